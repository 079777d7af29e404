-- Sealpost schema, version 3 (SQLite): held mail, cancelled notifications, sealed display names,
-- notification Message-IDs without reply tokens, and raw copies only of what was filed or held.

-- The outbox gains the status 'cancelled' (its participant was removed while it waited).
-- SQLite cannot change a CHECK constraint in place: the table is copied.
CREATE TABLE outbox_v3 (
    id               INTEGER PRIMARY KEY,
    seq              INTEGER NOT NULL UNIQUE,
    thread_id        INTEGER NOT NULL REFERENCES threads (id),
    message_id       INTEGER REFERENCES messages (id),
    participant_id   INTEGER NOT NULL REFERENCES participants (id),
    recipient        TEXT    NOT NULL,
    kind             TEXT    NOT NULL DEFAULT 'message',
    mode             TEXT    NOT NULL CHECK (mode IN ('secure', 'convenience')),
    status           TEXT    NOT NULL DEFAULT 'queued'
                     CHECK (status IN ('queued', 'sent', 'deferred', 'failed', 'bounced',
                                       'cancelled')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    last_error       TEXT,
    next_attempt_at  INTEGER NOT NULL,
    claimed_by       TEXT,
    claimed_until    INTEGER,
    -- The Message-ID header, fixed at first composition so a re-delivery is recognisable. It
    -- names the notification and carries no credential.
    email_message_id TEXT,
    relay_reply      TEXT,
    created_at       INTEGER NOT NULL,
    sent_at          INTEGER
);
INSERT INTO outbox_v3 (id, seq, thread_id, message_id, participant_id, recipient, kind, mode,
                       status, attempts, last_error, next_attempt_at, claimed_by, claimed_until,
                       email_message_id, relay_reply, created_at, sent_at)
SELECT id, seq, thread_id, message_id, participant_id, recipient, kind, mode,
       status, attempts, last_error, next_attempt_at, claimed_by, claimed_until,
       email_message_id, relay_reply, created_at, sent_at
FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_v3 RENAME TO outbox;
CREATE INDEX outbox_due ON outbox (status, next_attempt_at, seq);
CREATE INDEX outbox_recipient ON outbox (thread_id, participant_id, seq);
CREATE INDEX outbox_thread ON outbox (thread_id);
CREATE INDEX outbox_email_message_id ON outbox (email_message_id)
    WHERE email_message_id IS NOT NULL;

-- Convenience notifications used to carry the reply token in their Message-ID
-- (sp.TOKEN.ID@domain): no token stays in this table. They become the form content-free
-- notifications had (sp.n.ID@domain), which names the notification only.
UPDATE outbox
SET email_message_id = 'sp.n.' || printf('%016x', id)
                       || substr(email_message_id, instr(email_message_id, '@'))
WHERE email_message_id LIKE 'sp.%'
  AND email_message_id NOT LIKE 'sp.n.%'
  AND instr(email_message_id, '@') > 0;

-- Raw copies are kept only of messages that were filed (or held, below).
UPDATE inbound SET raw = NULL WHERE outcome NOT IN ('filed', 'held');

-- Display names are personal data: sealed under the thread's key like content. SQL cannot
-- seal; the application moves existing names into this column when it opens the database.
ALTER TABLE participants ADD COLUMN display_name_sealed BLOB;

-- Held mail: messages that were not filed because they could not be processed safely, kept
-- sealed under a key of their own (wrapped by the keyring's at-rest key) until a person
-- releases or rejects them. `id` is the message's inbound ledger row.
CREATE TABLE held (
    id                INTEGER PRIMARY KEY,
    received_at       INTEGER NOT NULL,
    door              TEXT    NOT NULL CHECK (door IN ('smtp', 'imap')),
    reason            TEXT    NOT NULL,
    thread_id         INTEGER REFERENCES threads (id),
    participant_id    INTEGER REFERENCES participants (id),
    header_message_id TEXT,
    size              INTEGER NOT NULL,
    key_id            INTEGER NOT NULL,
    wrapped_key       BLOB,
    envelope          BLOB,
    raw               BLOB,
    status            TEXT    NOT NULL DEFAULT 'held'
                      CHECK (status IN ('held', 'released', 'rejected')),
    decided_at        INTEGER,
    decided_by        TEXT
);
CREATE INDEX held_status ON held (status, received_at);
