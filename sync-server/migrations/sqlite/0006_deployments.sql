-- Deployment events from the trailers (a move away ends a deployment; standing still at a new
-- place starts one). Kept: they are the fixed-location history the public list is made from.
CREATE TABLE deployment_events (
    trailer_id  TEXT    NOT NULL,
    event_id    INTEGER NOT NULL,
    kind        TEXT    NOT NULL,
    at          INTEGER NOT NULL,
    lat         REAL    NOT NULL,
    lon         REAL    NOT NULL,
    note        TEXT    NOT NULL,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (trailer_id, event_id)
);
