-- Delivery reports that name a notification only by its Message-ID (no VERP bounce address)
-- are matched by this column; without an index each report scanned the whole outbox.
CREATE INDEX outbox_email_message_id ON outbox (email_message_id)
    WHERE email_message_id IS NOT NULL;
