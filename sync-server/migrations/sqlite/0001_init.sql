-- The agency's records. One database holds one agency's data (Minn. Stat. 13.824: no central
-- repository). Reads and pictures are destroyed by the server's retention duty; the location
-- history, usage periods and the audit trail outlive them.

CREATE TABLE reads (
    trailer_id   TEXT    NOT NULL,
    read_id      INTEGER NOT NULL,
    camera_id    TEXT    NOT NULL,
    plate        TEXT    NOT NULL,
    confidence   REAL    NOT NULL,
    first_seen   INTEGER NOT NULL,
    best_seen    INTEGER NOT NULL,
    lat          REAL    NOT NULL,
    lon          REAL    NOT NULL,
    fix          TEXT    NOT NULL,
    plate_box    TEXT    NOT NULL,
    has_crop     INTEGER NOT NULL,
    has_context  INTEGER NOT NULL,
    received_at  INTEGER NOT NULL,
    PRIMARY KEY (trailer_id, read_id)
);
CREATE INDEX reads_by_time ON reads (best_seen);
CREATE INDEX reads_by_plate ON reads (plate);

CREATE TABLE pictures (
    trailer_id   TEXT    NOT NULL,
    read_id      INTEGER NOT NULL,
    kind         TEXT    NOT NULL,
    jpeg         BLOB    NOT NULL,
    received_at  INTEGER NOT NULL,
    PRIMARY KEY (trailer_id, read_id, kind)
);

CREATE TABLE usage_periods (
    trailer_id   TEXT    NOT NULL,
    period_id    INTEGER NOT NULL,
    start_ms     INTEGER NOT NULL,
    end_ms       INTEGER,
    start_reason TEXT    NOT NULL,
    end_reason   TEXT,
    lat          REAL    NOT NULL,
    lon          REAL    NOT NULL,
    lists        TEXT    NOT NULL,
    PRIMARY KEY (trailer_id, period_id)
);

-- Where each stationary reader stood: one row per location, with its dates.
CREATE TABLE locations (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    trailer_id   TEXT    NOT NULL,
    lat          REAL    NOT NULL,
    lon          REAL    NOT NULL,
    place        TEXT    NOT NULL DEFAULT '',
    first_ms     INTEGER NOT NULL,
    last_ms      INTEGER NOT NULL,
    current      INTEGER NOT NULL DEFAULT 1,
    security     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX locations_by_trailer ON locations (trailer_id, current);

CREATE TABLE trailer_status (
    trailer_id       TEXT PRIMARY KEY,
    online           INTEGER NOT NULL,
    last_change      INTEGER NOT NULL,
    software_version TEXT    NOT NULL
);

-- Messages the server could not accept, kept for inspection with the reason.
CREATE TABLE dead_letters (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at INTEGER NOT NULL,
    topic       TEXT    NOT NULL,
    reason      TEXT    NOT NULL,
    payload     BLOB    NOT NULL
);

-- Append-only, hash-chained audit trail: hash = SHA-256(prev_hash || canonical entry).
CREATE TABLE audit (
    seq          INTEGER PRIMARY KEY,
    at           INTEGER NOT NULL,
    actor        TEXT    NOT NULL,
    action       TEXT    NOT NULL,
    purpose      TEXT    NOT NULL,
    case_number  TEXT    NOT NULL,
    detail       TEXT    NOT NULL,
    result_count INTEGER NOT NULL,
    prev_hash    TEXT    NOT NULL,
    hash         TEXT    NOT NULL
);
