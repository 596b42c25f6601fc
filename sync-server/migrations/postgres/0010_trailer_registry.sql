-- The same as migrations/sqlite/0014_trailer_registry.sql, in PostgreSQL's types.
-- Trailers are enrolled explicitly (`sync-server trailer enroll`): only an enrolled trailer's
-- uplinks are stored, only it is sent hotlists and ACP digests, and only it exists at the broker.
-- A revoked trailer keeps its row (who revoked it, when, why) and its records.
CREATE TABLE trailers (
    trailer_id     TEXT    PRIMARY KEY,
    enrolled_ms    BIGINT NOT NULL,
    enrolled_by    TEXT    NOT NULL,
    note           TEXT    NOT NULL DEFAULT '',
    revoked_ms     BIGINT,
    revoked_by     TEXT,
    revoked_reason TEXT
);
-- Trailers heard from before enrolment existed held certificates the agency issued them.
INSERT INTO trailers (trailer_id, enrolled_ms, enrolled_by, note)
    SELECT trailer_id, last_change, 'migration', 'heard from before enrolment' FROM trailer_status;
