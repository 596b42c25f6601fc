-- The console's users (see migrations/sqlite/0009_console_users.sql).
CREATE TABLE console_users (
    name           TEXT   PRIMARY KEY,
    role           TEXT   NOT NULL,
    authorised_by  TEXT   NOT NULL,
    authorisation  TEXT   NOT NULL,
    authorised_ms  BIGINT NOT NULL,
    active         BIGINT NOT NULL DEFAULT 1
);
