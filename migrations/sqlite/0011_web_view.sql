-- The secure web view: sign-in sessions, failed identity checks, and read receipts.
--
-- A session is known by the SHA-256 of the random value in its cookie, so a copy of the
-- database cannot be used to sign in. It belongs to a person (the directory entry of the
-- address the link was sent to); `participant_id` is the participant whose link opened it.
CREATE TABLE web_sessions (
    id_hash         BLOB    PRIMARY KEY,
    person_id       INTEGER NOT NULL REFERENCES people (id),
    participant_id  INTEGER NOT NULL REFERENCES participants (id),
    created_at      INTEGER NOT NULL,
    last_seen_at    INTEGER NOT NULL,
    ended_at        INTEGER
) WITHOUT ROWID;
CREATE INDEX web_sessions_person ON web_sessions (person_id);

-- Failed identity checks in a row; at web.max_failures the person's status becomes 'locked'.
ALTER TABLE people ADD COLUMN failed_checks INTEGER NOT NULL DEFAULT 0;
-- A passcode set by staff (web.verify = "passcode"), as an Argon2id PHC string: never the
-- passcode itself.
ALTER TABLE people ADD COLUMN passcode_hash TEXT;

-- When a participant first saw a message on the web view ("read at" for staff).
CREATE TABLE message_reads (
    message_id      INTEGER NOT NULL REFERENCES messages (id),
    participant_id  INTEGER NOT NULL REFERENCES participants (id),
    read_at         INTEGER NOT NULL,
    PRIMARY KEY (message_id, participant_id)
) WITHOUT ROWID;

-- A message its author cancelled before anyone acted on it (read it, or wrote after it): it
-- is gone from every view and its body is destroyed; the row stays for the audit trail and
-- the notifications that pointed at it.
ALTER TABLE messages ADD COLUMN cancelled_at INTEGER;
