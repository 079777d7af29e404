-- Sealpost schema, version 1 (SQLite).
--
-- Ids are random 63-bit integers chosen by the application (see src/domain/ids.rs).
-- Times are Unix seconds. Columns named subject, body and raw hold AES-256-GCM envelopes,
-- never plaintext (see src/crypto/seal.rs); wrapped_key is the thread's data key wrapped by the
-- keyring's at-rest key `key_id`. Nothing in this database can be read without the keyring.

CREATE TABLE threads (
    id               INTEGER PRIMARY KEY,
    mode             TEXT    NOT NULL CHECK (mode IN ('secure', 'convenience')),
    status           TEXT    NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
    key_id           INTEGER NOT NULL,
    wrapped_key      BLOB    NOT NULL,
    subject          BLOB    NOT NULL,
    created_at       INTEGER NOT NULL,
    last_activity_at INTEGER NOT NULL
);

CREATE TABLE participants (
    id           INTEGER PRIMARY KEY,
    thread_id    INTEGER NOT NULL REFERENCES threads (id),
    address      TEXT    NOT NULL,
    display_name TEXT,
    role         TEXT    NOT NULL CHECK (role IN ('staff', 'recipient')),
    created_at   INTEGER NOT NULL,
    revoked_at   INTEGER,
    UNIQUE (thread_id, address)
);

CREATE TABLE messages (
    id         INTEGER PRIMARY KEY,
    thread_id  INTEGER NOT NULL REFERENCES threads (id),
    seq        INTEGER NOT NULL,
    author_id  INTEGER NOT NULL REFERENCES participants (id),
    body       BLOB    NOT NULL,
    via        TEXT    NOT NULL CHECK (via IN ('cli', 'api', 'smtp', 'imap', 'web')),
    created_at INTEGER NOT NULL,
    UNIQUE (thread_id, seq)
);

-- One row per notification; written in the same transaction as the message it announces.
CREATE TABLE outbox (
    id               INTEGER PRIMARY KEY,
    -- Order of queuing: notifications go out, and thread together, in this order.
    seq              INTEGER NOT NULL UNIQUE,
    thread_id        INTEGER NOT NULL REFERENCES threads (id),
    message_id       INTEGER REFERENCES messages (id),
    participant_id   INTEGER NOT NULL REFERENCES participants (id),
    recipient        TEXT    NOT NULL,
    kind             TEXT    NOT NULL DEFAULT 'message',
    mode             TEXT    NOT NULL CHECK (mode IN ('secure', 'convenience')),
    status           TEXT    NOT NULL DEFAULT 'queued'
                     CHECK (status IN ('queued', 'sent', 'deferred', 'failed', 'bounced')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    last_error       TEXT,
    next_attempt_at  INTEGER NOT NULL,
    -- A worker's claim: which process holds the row, and until when.
    claimed_by       TEXT,
    claimed_until    INTEGER,
    -- The Message-ID header, fixed at first composition so a re-delivery is recognisable.
    email_message_id TEXT,
    relay_reply      TEXT,
    created_at       INTEGER NOT NULL,
    sent_at          INTEGER
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at, seq);
CREATE INDEX outbox_recipient ON outbox (thread_id, participant_id, seq);
CREATE INDEX outbox_thread ON outbox (thread_id);

-- The inbound ledger: one row per email that reached a decision, for dedupe and audit.
CREATE TABLE inbound (
    id                INTEGER PRIMARY KEY,
    received_at       INTEGER NOT NULL,
    door              TEXT    NOT NULL CHECK (door IN ('smtp', 'imap')),
    thread_id         INTEGER REFERENCES threads (id),
    header_message_id TEXT,
    imap_uidvalidity  INTEGER,
    imap_uid          INTEGER,
    outcome           TEXT    NOT NULL,
    reason            TEXT,
    filed_message_id  INTEGER REFERENCES messages (id),
    raw               BLOB
);
CREATE UNIQUE INDEX inbound_filed_once ON inbound (thread_id, header_message_id)
    WHERE header_message_id IS NOT NULL AND filed_message_id IS NOT NULL;

-- Audit trail. `detail` is JSON with ids, counts and reasons, never message content.
CREATE TABLE events (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    at        INTEGER NOT NULL,
    thread_id INTEGER,
    kind      TEXT    NOT NULL,
    detail    TEXT    NOT NULL DEFAULT '{}'
);
CREATE INDEX events_thread ON events (thread_id);
