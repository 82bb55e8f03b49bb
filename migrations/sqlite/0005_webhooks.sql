-- Webhook events that could not be delivered (tries ran out, queue full, run ended).
CREATE TABLE webhook_dead_letters (
    id           INTEGER PRIMARY KEY,
    campaign_id  INTEGER NOT NULL,
    url          TEXT NOT NULL,
    seq          INTEGER NOT NULL,        -- the X-Outdial-Delivery sequence number
    body         TEXT NOT NULL,           -- the JSON that was to be sent
    attempts     INTEGER NOT NULL,
    reason       TEXT NOT NULL,
    at           TEXT NOT NULL
);
CREATE INDEX webhook_dead_letters_campaign ON webhook_dead_letters (campaign_id, id);
