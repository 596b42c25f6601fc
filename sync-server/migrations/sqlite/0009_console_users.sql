-- The console's users: each with the role of their official duties, and the written
-- authorisation that granted it (who authorised, when, and the document's reference).
CREATE TABLE console_users (
    name           TEXT    PRIMARY KEY,
    role           TEXT    NOT NULL,
    authorised_by  TEXT    NOT NULL,
    authorisation  TEXT    NOT NULL,
    authorised_ms  INTEGER NOT NULL,
    active         INTEGER NOT NULL DEFAULT 1
);
