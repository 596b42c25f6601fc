-- See migrations/sqlite/0012_hotlist_files.sql.
ALTER TABLE hotlist_versions ADD COLUMN file BYTEA;
