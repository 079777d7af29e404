-- API keys for the HTTP API. A key is shown once when it is made ("sp_<id>_<secret>"); only
-- the SHA-256 of its secret is kept (the secret is 256 random bits, so a fast hash is enough:
-- there is nothing to guess). scope: read (GET only), write (also change things), admin
-- (also keys and configuration-like resources).
CREATE TABLE api_keys (
    id           INTEGER PRIMARY KEY,
    name         TEXT    NOT NULL,
    scope        TEXT    NOT NULL CHECK (scope IN ('read', 'write', 'admin')),
    secret_hash  BLOB    NOT NULL,
    created_at   INTEGER NOT NULL,
    revoked_at   INTEGER
);
