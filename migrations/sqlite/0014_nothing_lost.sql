-- Nothing a person writes is lost, shown to the wrong person, or unsaid (issue 23).

-- Archive is a participant's own filing choice, not the conversation's state: when they
-- archived it (NULL: in their inbox). Any new message in the conversation clears it for
-- everyone. Closing stays `threads.status`, set by staff.
ALTER TABLE participants ADD COLUMN archived_at INTEGER;

-- A conversation that several people outside the practice read together (a family, a
-- couple): made so on purpose, recorded, and shown to each of them. Conversations that
-- already had more than one recipient were shared in fact, so they are marked so.
ALTER TABLE threads ADD COLUMN shared INTEGER NOT NULL DEFAULT 0;
UPDATE threads SET shared = 1
WHERE (SELECT COUNT(*) FROM participants p
       WHERE p.thread_id = threads.id AND p.role = 'recipient') > 1;

-- Reads of a message by the practice outside the web view: a staff member with the CLI
-- (`thread show`), a portal through the API (who: the API key's id). Together with
-- message_reads (participants on the web view) this is "somebody has it": a message read
-- can no longer be taken back by its author.
CREATE TABLE message_access (
    message_id  INTEGER NOT NULL REFERENCES messages (id),
    reader      TEXT    NOT NULL,
    read_at     INTEGER NOT NULL,
    PRIMARY KEY (message_id, reader)
) WITHOUT ROWID;

-- Who took a message back (its author; kept for the tombstone and the audit trail).
ALTER TABLE messages ADD COLUMN cancelled_by INTEGER REFERENCES participants (id);

-- A copy of a held message (same Message-ID, same thread) is a duplicate.
CREATE INDEX held_thread_message ON held (thread_id, header_message_id);
-- Notices to one person in the last hour (the notice limit).
CREATE INDEX outbox_notices ON outbox (recipient, created_at) WHERE kind <> 'message';
