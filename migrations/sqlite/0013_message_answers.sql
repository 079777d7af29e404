-- The message a message answers: a reply from the web view names the message it was written
-- under; an email reply, the message of the notification it answers (In-Reply-To). The web
-- view nests replies and follow-ups under it. NULL: it starts an exchange of its own.
ALTER TABLE messages ADD COLUMN answers_id INTEGER REFERENCES messages (id);
