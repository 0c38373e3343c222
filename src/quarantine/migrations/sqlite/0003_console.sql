-- maildlp quarantine, schema version 3: the review console's accounts and sessions, and the
-- daily verdict counts behind its dashboard. Same DDL on SQLite and PostgreSQL.
CREATE TABLE users (
    name            TEXT PRIMARY KEY,
    role            TEXT NOT NULL CHECK (role IN ('reviewer', 'admin')),
    -- argon2id, PHC string format.
    password_hash   TEXT NOT NULL,
    disabled        BIGINT NOT NULL DEFAULT 0,
    failed_logins   BIGINT NOT NULL DEFAULT 0,
    locked_until_ms BIGINT NOT NULL DEFAULT 0,
    created_ms      BIGINT NOT NULL,
    password_ms     BIGINT NOT NULL
);

-- A session is known by the SHA-256 of its cookie value: a copy of the store does not hand
-- out live sessions.
CREATE TABLE sessions (
    token_hash   TEXT PRIMARY KEY,
    user_name    TEXT NOT NULL,
    csrf         TEXT NOT NULL,
    created_ms   BIGINT NOT NULL,
    last_seen_ms BIGINT NOT NULL,
    expires_ms   BIGINT NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_name);

-- Messages judged per UTC day, action, rule and kind ('' when none), summed over every node.
CREATE TABLE stats (
    day    TEXT NOT NULL,
    action TEXT NOT NULL,
    rule   TEXT NOT NULL,
    kind   TEXT NOT NULL,
    n      BIGINT NOT NULL,
    PRIMARY KEY (day, action, rule, kind)
);
