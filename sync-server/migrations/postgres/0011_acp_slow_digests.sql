-- ACP digests in two kinds (protocol version 2): `digest` is the slow one (Argon2id keyed with the
-- agency key) that trailers keep; `probe` the fast one (HMAC-SHA-256) the server matches
-- ingested reads with. Entries made before version 2 held only the fast digest: they keep
-- matching here, and must be added again for the trailers (which cannot use them).
ALTER TABLE acp_digests ADD COLUMN probe TEXT NOT NULL DEFAULT '';
UPDATE acp_digests SET probe = digest WHERE probe = '';
