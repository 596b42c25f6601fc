-- Reads each trailer destroyed by retention, per day it destroyed them, as its health reports
-- say (the counts of a day only grow; a replaced store starts again, so the larger is kept).
-- For the biennial audit report: the trailers' destruction is the agency's too.
CREATE TABLE trailer_destruction (
    trailer_id TEXT NOT NULL,
    day BIGINT NOT NULL,
    reads BIGINT NOT NULL,
    PRIMARY KEY (trailer_id, day)
);

-- When our copy of a release bundle was destroyed (with the reads it holds; the recipient's copy
-- is theirs, under the same duties).
ALTER TABLE release_requests ADD COLUMN bundle_destroyed_ms BIGINT;

-- Why a hold was released (the investigation resolved, the charge dismissed, ...).
ALTER TABLE holds ADD COLUMN release_reason TEXT;

-- Each determination that a location is (or is no longer) security information, with who made
-- it and why (Minn. Stat. 13.37, 13.824 subd. 5): for an in-camera review of what is withheld.
CREATE TABLE security_determinations (
    id          BIGSERIAL PRIMARY KEY,
    location_id BIGINT NOT NULL,
    at_ms       BIGINT NOT NULL,
    decided_by  TEXT   NOT NULL,
    security    BIGINT NOT NULL,
    reason      TEXT   NOT NULL
);
