-- The web view's 24-hour rule: a link opened long after it was sent (or after a newer one)
-- asks for a code sent to the person's mobile (or email) before the identity check.
--
-- A code is never stored: it is an HMAC of `nonce` under the keyring's web-code key
-- (`key_id`), so the sender and the check compute it and a copy of the database shows none.
-- `link_hash` is the SHA-256 of the link token the code was asked from; a code only opens
-- that link.
CREATE TABLE web_codes (
    id          INTEGER PRIMARY KEY,
    person_id   INTEGER NOT NULL REFERENCES people (id),
    thread_id   INTEGER NOT NULL REFERENCES threads (id),
    link_hash   BLOB    NOT NULL,
    key_id      INTEGER NOT NULL,
    nonce       BLOB    NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    passed_at   INTEGER
);
CREATE INDEX web_codes_link ON web_codes (link_hash, created_at);

-- Text messages waiting to go out, retried like the outbox. The text is not stored: the
-- sender builds it when it sends (a code from its web_codes row), and looks the number up
-- (sealed in the directory) then too.
CREATE TABLE sms_outbox (
    id              INTEGER PRIMARY KEY,
    person_id       INTEGER NOT NULL REFERENCES people (id),
    code_id         INTEGER NOT NULL REFERENCES web_codes (id),
    status          TEXT    NOT NULL DEFAULT 'queued'
                    CHECK (status IN ('queued', 'sent', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    next_attempt_at INTEGER NOT NULL,
    -- Retried until then (the code's expiry: a late code is of no use).
    give_up_at      INTEGER NOT NULL,
    claimed_by      TEXT,
    claimed_until   INTEGER,
    created_at      INTEGER NOT NULL,
    sent_at         INTEGER
);
CREATE INDEX sms_outbox_due ON sms_outbox (status, next_attempt_at);
