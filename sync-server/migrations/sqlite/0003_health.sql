-- The latest health report of each trailer (what the console shows at a glance).
CREATE TABLE trailer_health (
    trailer_id       TEXT PRIMARY KEY,
    reported_at      INTEGER NOT NULL,
    camera           TEXT    NOT NULL,
    lat              REAL    NOT NULL,
    lon              REAL    NOT NULL,
    fix              TEXT    NOT NULL,
    disk_used_pm     INTEGER NOT NULL,
    storage_full     INTEGER NOT NULL,
    store_repairs    INTEGER NOT NULL,
    backlog_items    INTEGER NOT NULL,
    last_read        INTEGER,
    dropped_frames   INTEGER NOT NULL,
    software_version TEXT    NOT NULL
);
