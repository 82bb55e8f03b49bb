-- The do-not-call list: numbers (normalised like leads) never dialled.
CREATE TABLE dnc (
    number    TEXT PRIMARY KEY,
    source    TEXT NOT NULL,             -- where it came from (file name, "api")
    added_at  TEXT NOT NULL
);
