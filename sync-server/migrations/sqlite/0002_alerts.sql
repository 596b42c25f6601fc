-- Hotlist hits raised on the trailers. An alert alone never justifies action: officers verify it
-- against the state systems (MNJIS/NLETS) first.
CREATE TABLE alerts (
    trailer_id    TEXT    NOT NULL,
    alert_id      INTEGER NOT NULL,
    read_id       INTEGER NOT NULL,
    plate         TEXT    NOT NULL,
    list_name     TEXT    NOT NULL,
    list_version  INTEGER NOT NULL,
    category      TEXT    NOT NULL,
    case_number   TEXT,
    seen_at       INTEGER NOT NULL,
    received_at   INTEGER NOT NULL,
    acknowledged  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (trailer_id, alert_id)
);
