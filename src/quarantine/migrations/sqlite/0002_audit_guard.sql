-- maildlp quarantine, schema version 2 (SQLite): REPLACE INTO deletes the old row without
-- firing DELETE triggers, so refuse any insert that would land on an existing entry.
CREATE TRIGGER audit_no_replace BEFORE INSERT ON audit
WHEN EXISTS (SELECT 1 FROM audit WHERE seq = NEW.seq)
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
