-- The people directory: one row per address the practice knows (issue 13).
--
-- kind: patient, staff (a clinician or other staff member; `title`), or colleague (someone at
-- another practice; `practice`). The display name, date of birth and mobile number are
-- personal data and are sealed like message content, under a data key of the person's own
-- (`wrapped_key`, wrapped by the keyring's key `key_id`): destroying it destroys them.
-- notifications: 'off' when the person opted out of notifications; their outbox rows are
-- then recorded as 'suppressed' instead of being sent. status: registered, invited, locked.
ALTER TABLE people ADD COLUMN kind TEXT NOT NULL DEFAULT 'patient'
    CHECK (kind IN ('patient', 'staff', 'colleague'));
ALTER TABLE people ADD COLUMN title TEXT;
ALTER TABLE people ADD COLUMN practice TEXT;
ALTER TABLE people ADD COLUMN notifications TEXT NOT NULL DEFAULT 'on'
    CHECK (notifications IN ('on', 'off'));
ALTER TABLE people ADD COLUMN status TEXT NOT NULL DEFAULT 'registered'
    CHECK (status IN ('registered', 'invited', 'locked'));
ALTER TABLE people ADD COLUMN key_id INTEGER;
ALTER TABLE people ADD COLUMN wrapped_key BLOB;
ALTER TABLE people ADD COLUMN name_sealed BLOB;
ALTER TABLE people ADD COLUMN birth_date_sealed BLOB;
ALTER TABLE people ADD COLUMN mobile_sealed BLOB;

-- Participants refer to a person; the address stays on the participant (tokens name it).
-- Every address that is a participant today becomes a person: staff if it is staff in any
-- thread, else a patient.
ALTER TABLE participants ADD COLUMN person_id INTEGER REFERENCES people (id);
INSERT INTO people (id, address, created_at, updated_at, kind)
SELECT (random() & 9223372036854775807) | 1, address, MIN(created_at), MIN(created_at),
       CASE WHEN MAX(role = 'staff') THEN 'staff' ELSE 'patient' END
FROM participants
WHERE address NOT IN (SELECT address FROM people)
GROUP BY address;
UPDATE participants SET person_id = (SELECT id FROM people WHERE people.address = participants.address);
CREATE INDEX participants_person ON participants (person_id);

-- The outbox gains the status 'suppressed' (the person opted out of notifications). SQLite
-- cannot change a CHECK constraint in place: the table is copied.
CREATE TABLE outbox_v6 (
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
                                       'cancelled', 'suppressed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    last_error       TEXT,
    next_attempt_at  INTEGER NOT NULL,
    claimed_by       TEXT,
    claimed_until    INTEGER,
    email_message_id TEXT,
    relay_reply      TEXT,
    created_at       INTEGER NOT NULL,
    sent_at          INTEGER,
    tls              TEXT
);
INSERT INTO outbox_v6 (id, seq, thread_id, message_id, participant_id, recipient, kind, mode,
                       status, attempts, last_error, next_attempt_at, claimed_by, claimed_until,
                       email_message_id, relay_reply, created_at, sent_at, tls)
SELECT id, seq, thread_id, message_id, participant_id, recipient, kind, mode,
       status, attempts, last_error, next_attempt_at, claimed_by, claimed_until,
       email_message_id, relay_reply, created_at, sent_at, tls
FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_v6 RENAME TO outbox;
CREATE INDEX outbox_due ON outbox (status, next_attempt_at, seq);
CREATE INDEX outbox_recipient ON outbox (thread_id, participant_id, seq);
CREATE INDEX outbox_thread ON outbox (thread_id);
CREATE INDEX outbox_email_message_id ON outbox (email_message_id)
    WHERE email_message_id IS NOT NULL;
