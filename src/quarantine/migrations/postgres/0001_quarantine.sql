-- maildlp quarantine, schema version 1 (PostgreSQL). Keep in step with ../sqlite/.
-- Times are milliseconds since the Unix epoch (UTC). `details` and `content` are sealed
-- (XChaCha20-Poly1305), and so are notice bodies (an incident report holds masked findings);
-- everything else is the metadata needed to list and filter.
CREATE TABLE meta (
    name  TEXT PRIMARY KEY,
    value BYTEA NOT NULL
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
    details       BYTEA NOT NULL,
    content       BYTEA
);
CREATE INDEX messages_status_received ON messages (status, received_ms);
CREATE INDEX messages_received ON messages (received_ms);

CREATE TABLE audit (
    seq        BIGSERIAL PRIMARY KEY,
    at_ms      BIGINT NOT NULL,
    actor      TEXT NOT NULL,
    action     TEXT NOT NULL,
    message_id TEXT,
    reason     TEXT NOT NULL,
    node       TEXT NOT NULL
);
CREATE INDEX audit_at ON audit (at_ms);
CREATE FUNCTION maildlp_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only';
END;
$$;
CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON audit
    FOR EACH ROW EXECUTE FUNCTION maildlp_audit_append_only();

CREATE TABLE notices (
    id            TEXT PRIMARY KEY,
    created_ms    BIGINT NOT NULL,
    kind          TEXT NOT NULL,
    message_id    TEXT,
    recipient     TEXT NOT NULL,
    subject       TEXT NOT NULL,
    body          BYTEA NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'failed', 'suppressed')),
    attempts      BIGINT NOT NULL DEFAULT 0,
    due_ms        BIGINT NOT NULL,
    claimed_until BIGINT NOT NULL DEFAULT 0,
    last_error    TEXT
);
CREATE INDEX notices_due ON notices (status, due_ms);
CREATE INDEX notices_recipient ON notices (recipient, created_ms);
