-- Webhook subscriptions and their deliveries.
--
-- A subscription's signing secret is wrapped under the keyring's at-rest key (key_id,
-- wrapped_secret), like a thread's data key: the database alone cannot sign.
CREATE TABLE webhooks (
    id              INTEGER PRIMARY KEY,
    url             TEXT    NOT NULL,
    description     TEXT    NOT NULL DEFAULT '',
    key_id          INTEGER NOT NULL,
    wrapped_secret  BLOB    NOT NULL,
    created_at      INTEGER NOT NULL,
    removed_at      INTEGER
);

-- The event types each subscription asked for.
CREATE TABLE webhook_events (
    event_type  TEXT    NOT NULL,
    webhook_id  INTEGER NOT NULL REFERENCES webhooks (id),
    PRIMARY KEY (event_type, webhook_id)
) WITHOUT ROWID;

-- One row per (event, subscription), written in the transaction that wrote the event, so a
-- crash loses none; the payload holds ids and statuses, never content, and is the body of
-- every attempt (the webhook-id header is "msg_" and the row's id, the same on every retry).
-- status: pending (due at next_attempt_at), delivered, failed (given up after the retry
-- window), cancelled (the subscription was removed).
CREATE TABLE webhook_deliveries (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    webhook_id       INTEGER NOT NULL REFERENCES webhooks (id),
    event_id         INTEGER NOT NULL,
    event_type       TEXT    NOT NULL,
    payload          TEXT    NOT NULL,
    status           TEXT    NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'delivered', 'failed', 'cancelled')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    created_at       INTEGER NOT NULL,
    next_attempt_at  INTEGER NOT NULL,
    claimed_by       TEXT,
    claimed_until    INTEGER,
    last_attempt_at  INTEGER,
    last_status      INTEGER,
    last_error       TEXT,
    delivered_at     INTEGER
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE status = 'pending';
CREATE INDEX webhook_deliveries_by_hook ON webhook_deliveries (webhook_id, id);
