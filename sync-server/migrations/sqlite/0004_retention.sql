-- Retention destroys by collection time: reads and alerts by when they were seen, pictures with
-- their read (or, without one, by when they arrived).
CREATE INDEX reads_by_first_seen ON reads (first_seen);
CREATE INDEX alerts_by_seen ON alerts (seen_at);
CREATE INDEX pictures_by_received ON pictures (received_at);
