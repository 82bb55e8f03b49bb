-- Several dialler processes (nodes) on one campaign (PostgreSQL): each attempt records the
-- node that placed it, and one attempt number per lead can exist once, so two nodes never
-- dial the same attempt of a lead (the second insert is skipped).
ALTER TABLE attempts ADD COLUMN node TEXT;
CREATE UNIQUE INDEX attempts_lead_attempt ON attempts (lead_id, attempt_no);
