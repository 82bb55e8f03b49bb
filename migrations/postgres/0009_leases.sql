-- One owner per campaign run (per node): a lease renewed every few seconds by the process
-- dialling the campaign, taken over only once expired. Attempts record their owner, so a
-- resume treats as interrupted only the attempts of an owner whose lease has expired.
CREATE TABLE run_leases (
    campaign_id  BIGINT NOT NULL REFERENCES campaigns(id),
    node         TEXT NOT NULL,
    owner        TEXT NOT NULL,           -- node/pid/start time of the process
    started_at   TEXT NOT NULL,
    expires_at   TEXT NOT NULL,
    PRIMARY KEY (campaign_id, node)
);
ALTER TABLE attempts ADD COLUMN owner TEXT;
