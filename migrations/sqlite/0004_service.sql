-- The service (`outdial serve`): call lists managed over the API, and campaigns created there.
CREATE TABLE call_lists (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  TEXT NOT NULL
);

CREATE TABLE call_list_numbers (
    id          INTEGER PRIMARY KEY,
    list_id     INTEGER NOT NULL REFERENCES call_lists(id) ON DELETE CASCADE,
    number      TEXT NOT NULL,            -- normalised (E.164 where a region was given)
    raw_number  TEXT NOT NULL,
    attributes  TEXT NOT NULL,            -- JSON object of strings
    line        INTEGER NOT NULL,         -- row in the upload (1-based; CSV header is line 1)
    UNIQUE (list_id, number)
);

-- Campaigns created over the API start as drafts; `call_lists` is the JSON array of list ids.
ALTER TABLE campaigns ADD COLUMN call_lists TEXT NOT NULL DEFAULT '[]';
