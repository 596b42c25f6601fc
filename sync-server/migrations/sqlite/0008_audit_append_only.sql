-- The audit trail is append-only: the database refuses to change or remove an entry. (Someone
-- with the rights to drop these triggers can still tamper; the hash chain then shows it.)
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN
    SELECT RAISE(ABORT, 'the audit trail is append-only');
END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN
    SELECT RAISE(ABORT, 'the audit trail is append-only');
END;
