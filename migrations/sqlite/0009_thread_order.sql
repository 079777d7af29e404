-- Threads in the order they were made: `seq` counts up with every new thread. The API pages
-- through threads by it, so threads made while a client pages do not shift the pages it has
-- not read yet (creation times have one-second resolution; ids are random).
ALTER TABLE threads ADD COLUMN seq INTEGER;
UPDATE threads SET seq = r.rn
FROM (SELECT id, ROW_NUMBER() OVER (ORDER BY created_at, id) AS rn FROM threads) AS r
WHERE r.id = threads.id;
CREATE UNIQUE INDEX threads_seq ON threads (seq);
