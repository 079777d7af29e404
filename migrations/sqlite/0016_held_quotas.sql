-- Held mail has quotas (issue 24): where each held message came from, to count what waits per
-- source. `client` is the SMTP client's address (a mail server's; NULL over IMAP or from a
-- trusted relay, whose address is everyone's); `sender_domain` the domain of `From:` (else of
-- the envelope sender).
ALTER TABLE held ADD COLUMN client TEXT;
ALTER TABLE held ADD COLUMN sender_domain TEXT;
CREATE INDEX held_waiting_client ON held (client) WHERE status = 'held';
CREATE INDEX held_waiting_domain ON held (sender_domain) WHERE status = 'held';
CREATE INDEX held_waiting_participant ON held (participant_id) WHERE status = 'held';

-- When a quota was last found full, per quota and source, so staff are told once (a day), not
-- at every refused message.
CREATE TABLE held_alerts (
    quota   TEXT    NOT NULL,
    source  TEXT    NOT NULL,
    at      INTEGER NOT NULL,
    PRIMARY KEY (quota, source)
) WITHOUT ROWID;
