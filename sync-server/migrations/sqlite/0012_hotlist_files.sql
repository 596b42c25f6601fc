-- The file of each hotlist version, so that a trailer first heard from after an upload is sent
-- the newest version of every list. Versions older than a list's newest are emptied.
ALTER TABLE hotlist_versions ADD COLUMN file BLOB;
