-- The period of active use each read was counted under in the public log (0: none had arrived):
-- when a period arrives after its reads (after an offline stretch alerts go first), they and
-- their hits move to it.
ALTER TABLE reads ADD COLUMN period_id BIGINT NOT NULL DEFAULT 0;
CREATE INDEX reads_unattributed ON reads (trailer_id, period_id, first_seen);
