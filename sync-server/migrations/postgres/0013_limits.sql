-- Limits per identity: who sent each refused message (so each sender's kept bytes are bounded),
-- and how many uplinks were over their trailer's rate.
ALTER TABLE dead_letters ADD COLUMN sender TEXT NOT NULL DEFAULT '';
CREATE INDEX dead_letters_by_sender ON dead_letters (sender);
ALTER TABLE ingest_counts ADD COLUMN rate_limited BIGINT NOT NULL DEFAULT 0;
-- Records stamped by a clock that cannot be right (ahead of the server, or before 2024): kept as
-- dead letters, counted for health.
ALTER TABLE ingest_counts ADD COLUMN clock_refused BIGINT NOT NULL DEFAULT 0;
