-- The REST API's bearer tokens and the agents' dispositions.
-- A token is shown once when created; only its SHA-256 is kept.
CREATE TABLE api_tokens (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    role        TEXT NOT NULL,             -- owner | admin | supervisor | agent
    agent_id    TEXT,                      -- the agent an `agent` token acts as
    token_hash  TEXT NOT NULL UNIQUE,      -- hex SHA-256 of the token
    created_at  TEXT NOT NULL,
    revoked_at  TEXT
);

-- The disposition the agent set for the call (`agent_disposition` event), if any.
ALTER TABLE attempts ADD COLUMN agent_disposition TEXT;
