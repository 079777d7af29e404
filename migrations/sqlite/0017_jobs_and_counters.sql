-- One durable job queue (issue 25). The outbox, webhook deliveries and text messages already
-- share its columns (status, attempts, next_attempt_at, claimed_by, claimed_until); what is
-- new is work that is due at a time rather than caused by an event, and leases that elect one
-- holder for a part that must run once (the IMAP poller).

-- Work due at a time: a kind, a key that makes it unique (a second "run housekeeping for this
-- hour" is the same job, however many instances or restarts ask for it) and a due time.
CREATE TABLE scheduled_jobs (
    id              INTEGER PRIMARY KEY,
    kind            TEXT    NOT NULL,
    key             TEXT    NOT NULL,
    status          TEXT    NOT NULL DEFAULT 'queued'
                    CHECK (status IN ('queued', 'done', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    next_attempt_at INTEGER NOT NULL,
    claimed_by      TEXT,
    claimed_until   INTEGER,
    created_at      INTEGER NOT NULL,
    done_at         INTEGER,
    UNIQUE (kind, key)
);
CREATE INDEX scheduled_jobs_due ON scheduled_jobs (status, next_attempt_at);

-- Who runs a singleton part, until when. A holder renews before `until`; once it has passed,
-- anyone may take the lease.
CREATE TABLE leases (
    name    TEXT    PRIMARY KEY,
    holder  TEXT    NOT NULL,
    since   INTEGER NOT NULL,
    until   INTEGER NOT NULL
) WITHOUT ROWID;

-- Order numbers from counters bumped atomically (`UPDATE … RETURNING`), not `MAX(seq) + 1`:
-- the same statement stays correct when several writers run at once. Global orders live
-- here; a thread's message order lives on the thread, whose row the bump locks.
CREATE TABLE counters (
    name    TEXT    PRIMARY KEY,
    value   INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO counters (name, value) SELECT 'threads', COALESCE(MAX(seq), 0) FROM threads;
INSERT INTO counters (name, value) SELECT 'outbox', COALESCE(MAX(seq), 0) FROM outbox;
ALTER TABLE threads ADD COLUMN message_seq INTEGER NOT NULL DEFAULT 0;
UPDATE threads SET message_seq =
    (SELECT COALESCE(MAX(seq), 0) FROM messages WHERE messages.thread_id = threads.id);
