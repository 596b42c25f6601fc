-- What the law keeps after the reads are gone, and what it requires the agency to do.

-- The public log of use (Minn. Stat. 13.824 subd. 5), counted at ingest so that it outlives the
-- destruction of the reads: per reader, per period of active use (0: none recorded when the
-- reads arrived) and per local day. `hours` has bit h set when reads were collected in local
-- hour h. Hit columns count hotlist hits by category.
CREATE TABLE use_log (
    trailer_id        TEXT    NOT NULL,
    period_id         INTEGER NOT NULL,
    day               TEXT    NOT NULL,
    hours             INTEGER NOT NULL DEFAULT 0,
    reads             INTEGER NOT NULL DEFAULT 0,
    stolen_vehicle    INTEGER NOT NULL DEFAULT 0,
    stolen_plate      INTEGER NOT NULL DEFAULT 0,
    warrant           INTEGER NOT NULL DEFAULT 0,
    suspended_revoked INTEGER NOT NULL DEFAULT 0,
    missing_person    INTEGER NOT NULL DEFAULT 0,
    investigative     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (trailer_id, period_id, day)
);
CREATE INDEX use_log_by_day ON use_log (day);
CREATE INDEX usage_periods_by_start ON usage_periods (trailer_id, start_ms);

-- Notices to the BCA (subd. 4(c)): a reader's installation or first use, and each new fixed
-- location, due 10 days after the event. location_id 0: none.
CREATE TABLE bca_notices (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    trailer_id  TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    location_id INTEGER NOT NULL,
    event_ms    INTEGER NOT NULL,
    due_ms      INTEGER NOT NULL,
    created_ms  INTEGER NOT NULL,
    sent_ms     INTEGER,
    sent_via    TEXT,
    attempts    INTEGER NOT NULL DEFAULT 0,
    last_error  TEXT,
    claimed_ms  INTEGER,
    rendered_ms INTEGER,
    UNIQUE (trailer_id, kind, location_id)
);

-- Holds keep reads (and their pictures and alerts) past retention: an active criminal
-- investigation, or a written request to keep exculpatory evidence (subd. 3).
CREATE TABLE holds (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    kind        TEXT    NOT NULL,
    case_number TEXT    NOT NULL,
    note        TEXT    NOT NULL,
    created_by  TEXT    NOT NULL,
    created_ms  INTEGER NOT NULL,
    released_by TEXT,
    released_ms INTEGER
);
CREATE TABLE held_reads (
    hold_id    INTEGER NOT NULL,
    trailer_id TEXT    NOT NULL,
    read_id    INTEGER NOT NULL,
    PRIMARY KEY (hold_id, trailer_id, read_id)
);
CREATE INDEX held_reads_by_read ON held_reads (trailer_id, read_id);

-- A picture is destroyed with its read: it carries the read's collection time (or, if it
-- arrived before its read, its own arrival time, and `early` says so).
ALTER TABLE pictures ADD COLUMN collected_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE pictures ADD COLUMN early INTEGER NOT NULL DEFAULT 0;
CREATE INDEX pictures_early ON pictures (trailer_id, read_id) WHERE early = 1;

-- One current location per reader, whichever server instance ingests.
-- When the server learnt of a location: it stays out of the public list for the review period.
ALTER TABLE locations ADD COLUMN created_ms INTEGER NOT NULL DEFAULT 0;
CREATE UNIQUE INDEX locations_one_current ON locations (trailer_id) WHERE current = 1;
UPDATE pictures SET collected_at = COALESCE((SELECT MIN(r.first_seen) FROM reads r
    WHERE r.trailer_id = pictures.trailer_id AND r.read_id = pictures.read_id), received_at);
CREATE INDEX pictures_by_collected ON pictures (collected_at);
