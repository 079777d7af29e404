-- Sign-in and abuse, second round (issue 24).

-- A lock is temporary and grows each time it comes back (15 minutes, an hour, a day): when the
-- current one began, when it ends (NULL: until staff lift it), and how many came in a row.
ALTER TABLE people ADD COLUMN locked_at INTEGER;
ALTER TABLE people ADD COLUMN locked_until INTEGER;
ALTER TABLE people ADD COLUMN lock_count INTEGER NOT NULL DEFAULT 0;
-- Locks made before this version last until staff lift them, as they did.
UPDATE people SET locked_at = updated_at, lock_count = 1 WHERE status = 'locked';

-- Which client asked for a code (a keyed hash of its address, never the address): a person's
-- codes an hour are counted per client too, so one link holder cannot use them all up.
ALTER TABLE web_codes ADD COLUMN client BLOB;
CREATE INDEX web_codes_person ON web_codes (person_id, created_at);
