-- The practice's directory of people, keyed by address. It starts with what convenience mode
-- needs: whether the person agreed to receive message content by ordinary email. (The people
-- directory proper — kind, names, sealed date of birth and mobile number, notification
-- opt-out, registration status — extends this table.)
--
-- A thread in convenience mode sends content only to recipients whose `convenience` is 'yes';
-- everyone else in it gets secure notifications. `convenience_text` is the text the person was
-- shown when they chose (the warning that email is not fully protected), `convenience_by` how
-- the choice was recorded ("cli:NAME", "web", "api"; "bounce" or "complaint" when Sealpost
-- withdrew it after a hard bounce or a spam complaint).
CREATE TABLE people (
    id               INTEGER PRIMARY KEY,
    address          TEXT    NOT NULL UNIQUE,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    convenience      TEXT    CHECK (convenience IN ('yes', 'no')),
    convenience_at   INTEGER,
    convenience_text TEXT,
    convenience_by   TEXT
);
