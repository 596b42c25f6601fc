-- See migrations/sqlite/0011_console_work.sql.

-- Address Confidentiality Program participants' plates, only as HMAC-SHA-256 digests under the
-- agency's ACP key (hex): reads of them are destroyed at once and dropped when they arrive.
CREATE TABLE acp_digests (
    digest     TEXT    PRIMARY KEY,
    added_ms   BIGINT  NOT NULL,
    added_by   TEXT    NOT NULL,
    reference  TEXT    NOT NULL
);

-- Hotlist versions uploaded by operators (the file itself goes to the trailers as downlinks),
-- and the parts of an upload still being received.
CREATE TABLE hotlist_versions (
    name         TEXT    NOT NULL,
    version      BIGINT  NOT NULL,
    sha256       TEXT    NOT NULL,
    entries      BIGINT  NOT NULL,
    bytes        BIGINT  NOT NULL,
    trailers     TEXT    NOT NULL,
    uploaded_by  TEXT    NOT NULL,
    uploaded_ms  BIGINT  NOT NULL,
    PRIMARY KEY (name, version)
);
CREATE TABLE hotlist_parts (
    name        TEXT    NOT NULL,
    version     BIGINT  NOT NULL,
    idx         BIGINT  NOT NULL,
    count       BIGINT  NOT NULL,
    data        BYTEA   NOT NULL,
    uploaded_by TEXT    NOT NULL,
    PRIMARY KEY (name, version, idx)
);

-- Release requests under the agency's written-request procedure: who asks, why, on what factual
-- basis and authority; the review, the decision and the fulfilment. Kept on file (not subject
-- to the 60-day destruction of the data they concern).
CREATE TABLE release_requests (
    id                 BIGSERIAL PRIMARY KEY,
    requesting_agency  TEXT    NOT NULL,
    requester          TEXT    NOT NULL,
    purpose            TEXT    NOT NULL,
    factual_basis      TEXT    NOT NULL,
    case_number        TEXT    NOT NULL,
    authorisation      TEXT    NOT NULL,
    plate              TEXT    NOT NULL,
    from_ms            BIGINT  NOT NULL,
    to_ms              BIGINT  NOT NULL,
    state              TEXT    NOT NULL,
    requested_by       TEXT    NOT NULL,
    requested_ms       BIGINT  NOT NULL,
    reviewed_by        TEXT,
    reviewed_ms        BIGINT ,
    review_note        TEXT,
    decided_by         TEXT,
    decided_ms         BIGINT ,
    decision_reason    TEXT,
    fulfilled_by       TEXT,
    fulfilled_ms       BIGINT ,
    bundle             TEXT,
    manifest_sha256    TEXT,
    reads_released     BIGINT 
);

CREATE TABLE acp_dropped (
    trailer_id  TEXT    NOT NULL,
    read_id     BIGINT  NOT NULL,
    dropped_ms  BIGINT  NOT NULL,
    PRIMARY KEY (trailer_id, read_id)
);
