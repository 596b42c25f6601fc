-- Commands to trailers (hotlist chunks, holds, ACP digests, requests). Each row is one
-- downlink, its id the downlink id the trailer answers. Kept with the answer: who sent what to
-- which trailer, and whether it was applied, is part of the record.
CREATE TABLE downlinks (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    trailer_id   TEXT    NOT NULL,
    kind         TEXT    NOT NULL,
    summary      TEXT    NOT NULL,
    frame        BLOB    NOT NULL,
    created_at   INTEGER NOT NULL,
    created_by   TEXT    NOT NULL,
    sent_at      INTEGER,
    attempts     INTEGER NOT NULL DEFAULT 0,
    answered_at  INTEGER,
    applied      INTEGER,
    answer       TEXT
);
CREATE INDEX downlinks_open ON downlinks (answered_at, trailer_id, id);
