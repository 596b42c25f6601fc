-- Suspension orders (Minn. Stat. 13.824 subd. 6): while one is in force (not lifted) every
-- trailer is told to stop collecting and the server stores no new read; reads collected while
-- one was in force are refused whenever they arrive.
CREATE TABLE suspensions (
    id          INTEGER PRIMARY KEY,
    order_ref   TEXT    NOT NULL,
    note        TEXT    NOT NULL,
    ordered_by  TEXT    NOT NULL,
    ordered_ms  INTEGER NOT NULL,
    lifted_by   TEXT,
    lifted_ms   INTEGER,
    lift_ref    TEXT
);

-- The biennial audits' results (subd. 6): public once recorded, with the report to the
-- Commissioner due 30 days after the audit.
CREATE TABLE audit_results (
    id           INTEGER PRIMARY KEY,
    completed_ms INTEGER NOT NULL,
    auditor      TEXT    NOT NULL,
    summary      TEXT    NOT NULL,
    compliant    INTEGER NOT NULL,
    recorded_by  TEXT    NOT NULL,
    recorded_ms  INTEGER NOT NULL,
    reported_ms  INTEGER,
    reported_how TEXT
);

-- Hotlists are standing searches (subd. 2): a list that is not the state's plate data file is
-- loaded only tagged to an active investigation (its case number and purpose), and only once a
-- second supervisor approved it; any list can be withdrawn. A downlink names the list it carries
-- so a superseded or withdrawn version's unsent chunks can be cancelled.
ALTER TABLE hotlist_versions ADD COLUMN state_list INTEGER NOT NULL DEFAULT 1;
ALTER TABLE hotlist_versions ADD COLUMN purpose TEXT NOT NULL DEFAULT '';
ALTER TABLE hotlist_versions ADD COLUMN case_number TEXT NOT NULL DEFAULT '';
ALTER TABLE hotlist_versions ADD COLUMN approved_by TEXT;
ALTER TABLE hotlist_versions ADD COLUMN approved_ms INTEGER;
ALTER TABLE hotlist_versions ADD COLUMN withdrawn_by TEXT;
ALTER TABLE hotlist_versions ADD COLUMN withdrawn_ms INTEGER;
ALTER TABLE hotlist_versions ADD COLUMN withdraw_reason TEXT;
UPDATE hotlist_versions SET approved_by = uploaded_by, approved_ms = uploaded_ms;
ALTER TABLE downlinks ADD COLUMN list_name TEXT;

-- A hold keeps the written request it answers (subd. 3(b)): who asked and when, and for an
-- exculpatory hold the charge or complaint the evidence bears on. A hold may name a plate and a
-- period instead of reads: every read of that plate collected in [from_ms, to_ms) is held, on
-- the server (those arriving later too) and on every trailer.
ALTER TABLE holds ADD COLUMN requester TEXT NOT NULL DEFAULT '';
ALTER TABLE holds ADD COLUMN request_date TEXT NOT NULL DEFAULT '';
ALTER TABLE holds ADD COLUMN charge TEXT NOT NULL DEFAULT '';
ALTER TABLE holds ADD COLUMN plate TEXT;
ALTER TABLE holds ADD COLUMN from_ms INTEGER;
ALTER TABLE holds ADD COLUMN to_ms INTEGER;

-- Reads shared by another agency (subd. 4): kept under our rules (retention from collection,
-- holds, ACP, audited access) and marked with their source; NULL for our own trailers' reads.
ALTER TABLE reads ADD COLUMN source_agency TEXT;
