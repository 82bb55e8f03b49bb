-- Inbound calls (a campaign's `[inbound]` numbers): their attempts say so, and are numbered
-- below zero (-1, -2, … per lead) so they never take an outbound attempt's number.
ALTER TABLE attempts ADD COLUMN direction TEXT NOT NULL DEFAULT 'outbound';
