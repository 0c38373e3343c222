-- maildlp quarantine, schema version 2 (PostgreSQL): TRUNCATE fires no row trigger, so refuse
-- it with a statement trigger.
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
    FOR EACH STATEMENT EXECUTE FUNCTION maildlp_audit_append_only();
