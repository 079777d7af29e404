-- Idempotency-Key on API POSTs: the first answer to (key, Idempotency-Key) is kept 24 hours and
-- given again to a retry of the same request. `fingerprint` is the SHA-256 of the method, path
-- and body; a different request under the same Idempotency-Key is refused. A row without
-- `status` is a request still being answered. An answer may carry personal data (a person as
-- created): `body` is sealed under a data key of the row's own, wrapped by the keyring's key
-- `key_id` (`wrapped_key`), like everything else that is personal.
CREATE TABLE idempotency (
    api_key_id  INTEGER NOT NULL,
    key         TEXT    NOT NULL,
    fingerprint BLOB    NOT NULL,
    status      INTEGER,
    body        BLOB,
    key_id      INTEGER,
    wrapped_key BLOB,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (api_key_id, key)
);
CREATE INDEX idempotency_age ON idempotency (created_at);
