-- An operator acknowledges an alert with its outcome (after verifying it with the state's
-- systems): who, when, what came of it.
ALTER TABLE alerts ADD COLUMN outcome TEXT;
ALTER TABLE alerts ADD COLUMN acknowledged_by TEXT;
ALTER TABLE alerts ADD COLUMN acknowledged_ms INTEGER;
