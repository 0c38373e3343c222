-- maildlp quarantine, schema version 1 (SQLite). Keep in step with ../postgres/.
-- Times are milliseconds since the Unix epoch (UTC). `details` and `content` are sealed
-- (XChaCha20-Poly1305), and so are notice bodies (an incident report holds masked findings);
-- everything else is the metadata needed to list and filter.
CREATE TABLE meta (
    name  TEXT PRIMARY KEY,
    value BLOB NOT NULL
);

CREATE TABLE messages (
    id            TEXT PRIMARY KEY,
    received_ms   BIGINT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('held', 'released', 'deleted', 'expired')),
    status_ms     BIGINT NOT NULL,
    node          TEXT NOT NULL,
    mode          TEXT NOT NULL,
    queue_id      TEXT,
    client_addr   TEXT,
    sender        TEXT NOT NULL,
    sender_domain TEXT NOT NULL,
    recipients    TEXT NOT NULL,
    rules         TEXT NOT NULL,
    kinds         TEXT NOT NULL,
    size          BIGINT NOT NULL,
    details       BLOB NOT NULL,
    content       BLOB
);
CREATE INDEX messages_status_received ON messages (status, received_ms);
CREATE INDEX messages_received ON messages (received_ms);

CREATE TABLE audit (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms      BIGINT NOT NULL,
    actor      TEXT NOT NULL,
    action     TEXT NOT NULL,
    message_id TEXT,
    reason     TEXT NOT NULL,
    node       TEXT NOT NULL
);
CREATE INDEX audit_at ON audit (at_ms);
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;

CREATE TABLE notices (
    id            TEXT PRIMARY KEY,
    created_ms    BIGINT NOT NULL,
    kind          TEXT NOT NULL,
    message_id    TEXT,
    recipient     TEXT NOT NULL,
    subject       TEXT NOT NULL,
    body          BLOB NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'failed', 'suppressed')),
    attempts      BIGINT NOT NULL DEFAULT 0,
    due_ms        BIGINT NOT NULL,
    claimed_until BIGINT NOT NULL DEFAULT 0,
    last_error    TEXT
);
CREATE INDEX notices_due ON notices (status, due_ms);
CREATE INDEX notices_recipient ON notices (recipient, created_ms);
