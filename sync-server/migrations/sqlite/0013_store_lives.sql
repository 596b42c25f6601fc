-- A trailer's store replaced or restored (protocol version 2). Each run of a trailer's store, as
-- its status reported it: a store id never seen for the trailer is a new store, an `opens` already
-- seen under another run is a restored older copy. Either is told to operators (trailer_status)
-- and the audit trail, and the trailer is sent again what its store must hold.
CREATE TABLE trailer_stores (
    trailer_id TEXT    NOT NULL,
    store_id   TEXT    NOT NULL,
    created_ms INTEGER NOT NULL,
    opens      INTEGER NOT NULL,
    run        TEXT    NOT NULL,
    first_seen INTEGER NOT NULL,
    event      TEXT    NOT NULL,
    PRIMARY KEY (trailer_id, store_id, run)
);
ALTER TABLE trailer_status ADD COLUMN store_id TEXT;
ALTER TABLE trailer_status ADD COLUMN store_event TEXT;
ALTER TABLE trailer_status ADD COLUMN store_event_ms INTEGER;

-- Records that came again: the same content (a resend, stored once) or other content under an id
-- the server already holds (a collision, kept in the dead letters and never dropped silently).
CREATE TABLE ingest_counts (
    trailer_id        TEXT    PRIMARY KEY,
    resends           INTEGER NOT NULL DEFAULT 0,
    collisions        INTEGER NOT NULL DEFAULT 0,
    last_collision_ms INTEGER
);
-- Each collision once (a colliding record sent again is a resend of it); its pictures follow it
-- to the dead letters. Destroyed with the dead letters, by the same clock.
CREATE TABLE collisions (
    trailer_id TEXT    NOT NULL,
    kind       TEXT    NOT NULL,
    item_id    INTEGER NOT NULL,
    digest     TEXT    NOT NULL,
    at         INTEGER NOT NULL,
    PRIMARY KEY (trailer_id, kind, item_id, digest)
);
CREATE INDEX collisions_by_at ON collisions (at);
