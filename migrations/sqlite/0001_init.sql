-- outdial schema v1: campaigns, leads, attempts, call events.
-- Timestamps are RFC 3339 UTC strings with milliseconds ('2026-11-23T10:00:00.123Z'),
-- so they sort as text and read the same in SQLite and PostgreSQL.

CREATE TABLE campaigns (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    config      TEXT NOT NULL,            -- the effective campaign settings, JSON
    state       TEXT NOT NULL,            -- active | completed
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);

CREATE TABLE leads (
    id                INTEGER PRIMARY KEY,
    campaign_id       INTEGER NOT NULL REFERENCES campaigns(id),
    number            TEXT NOT NULL,      -- normalised (E.164 where a region is set)
    raw_number        TEXT NOT NULL,      -- as it stood in the call list
    attributes        TEXT NOT NULL,      -- JSON object of the other CSV columns
    source_line       INTEGER,            -- line in the CSV it came from
    status            TEXT NOT NULL DEFAULT 'pending',   -- pending | final
    final_disposition TEXT,
    attempts          INTEGER NOT NULL DEFAULT 0,        -- attempts that count to max_attempts
    next_attempt_at   TEXT,               -- not before this time (retry_after)
    UNIQUE (campaign_id, number)
);
CREATE INDEX leads_due ON leads (campaign_id, status, next_attempt_at);

CREATE TABLE attempts (
    id            INTEGER PRIMARY KEY,
    campaign_id   INTEGER NOT NULL REFERENCES campaigns(id),
    lead_id       INTEGER NOT NULL REFERENCES leads(id),
    attempt_no    INTEGER NOT NULL,
    call_id       TEXT,
    state         TEXT NOT NULL,          -- dialing | ended
    sip_status    INTEGER,
    reason_phrase TEXT,
    disposition   TEXT,
    q850_cause    INTEGER,
    hangup_by     TEXT,
    detail        TEXT,
    started_at    TEXT NOT NULL,
    ringing_at    TEXT,
    answered_at   TEXT,
    ended_at      TEXT
);
CREATE INDEX attempts_lead ON attempts (lead_id);
CREATE INDEX attempts_state ON attempts (campaign_id, state);

CREATE TABLE call_events (
    id          INTEGER PRIMARY KEY,
    attempt_id  INTEGER NOT NULL REFERENCES attempts(id),
    call_id     TEXT NOT NULL,
    kind        TEXT NOT NULL,
    at          TEXT NOT NULL,
    data        TEXT NOT NULL            -- the event as JSON
);
CREATE INDEX call_events_attempt ON call_events (attempt_id);
