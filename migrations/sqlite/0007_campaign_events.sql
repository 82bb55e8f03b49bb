-- Events of a whole campaign (auto-pause and its release), beside the calls' events.
CREATE TABLE campaign_events (
    id           INTEGER PRIMARY KEY,
    campaign_id  INTEGER NOT NULL REFERENCES campaigns(id),
    kind         TEXT NOT NULL,           -- auto_paused | auto_resumed
    at           TEXT NOT NULL,
    data         TEXT NOT NULL            -- the event as JSON
);
CREATE INDEX campaign_events_campaign ON campaign_events (campaign_id, id);
