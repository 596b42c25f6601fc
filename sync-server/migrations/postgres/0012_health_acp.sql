-- What each trailer says of its ACP key (its fingerprint, none without a key) and list (protocol
-- version 2): health shows a trailer that cannot honour ACP requests; and when it last rolled back a
-- configuration the server sent that never started.
ALTER TABLE trailer_health ADD COLUMN acp_fingerprint TEXT;
ALTER TABLE trailer_health ADD COLUMN acp_entries BIGINT NOT NULL DEFAULT 0;
ALTER TABLE trailer_health ADD COLUMN config_rolled_back BIGINT;
