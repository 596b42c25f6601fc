-- Limits per identity: who sent each refused message (so each sender's kept bytes are bounded),
-- and how many uplinks were over their trailer's rate.
ALTER TABLE dead_letters ADD COLUMN sender TEXT NOT NULL DEFAULT '';
CREATE INDEX dead_letters_by_sender ON dead_letters (sender);
ALTER TABLE ingest_counts ADD COLUMN rate_limited BIGINT NOT NULL DEFAULT 0;
