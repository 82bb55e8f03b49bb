-- Agents of the ACD and their state changes.
-- Agents authenticate with digest: only HA1 = H(username:realm:password) is kept, for MD5 and
-- SHA-256; the password itself is never stored.
CREATE TABLE agents (
    id          TEXT PRIMARY KEY,          -- SIP username
    realm       TEXT NOT NULL,
    ha1_md5     TEXT NOT NULL,
    ha1_sha256  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);

CREATE TABLE agent_events (
    id        INTEGER PRIMARY KEY,
    agent     TEXT NOT NULL,
    state     TEXT NOT NULL,               -- offline | available | reserved | on_call | wrap_up | paused
    reason    TEXT NOT NULL,
    call_id   TEXT,                        -- the customer call, if any
    at        TEXT NOT NULL
);
CREATE INDEX agent_events_agent ON agent_events (agent, at);
