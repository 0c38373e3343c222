//! The quarantine store: held messages, the audit log and the notice queue, in SQLite (one
//! machine, the default) or PostgreSQL (several filter nodes). One implementation over sqlx's
//! `any` driver; the SQL here is written to run unchanged on both (only the DDL in
//! `migrations/` differs). Callers speak in the review's words (hold, list, show, release,
//! delete, audit) and never write SQL.

use super::crypto::{Key, KeyError, OpenError};
use super::{AuditEntry, Details, HeldMessage, ListFilter, NewNotice, Notice, Status, Summary};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{Any, AnyPool, Executor, Row, Transaction};
use std::path::{Path, PathBuf};
use std::time::Duration;

const KEY_CHECK: &[u8] = b"maildlp quarantine key check v1";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "cannot open the quarantine store {url}: {source} (is the database running and the URL right? sqlite:PATH or postgres://USER@HOST/DB)"
    )]
    Connect { url: String, source: sqlx::Error },
    #[error("{0:?} is not a store URL: use sqlite:PATH or postgres://USER@HOST:PORT/DATABASE")]
    BadUrl(String),
    #[error("quarantine store: {0}")]
    Db(#[from] sqlx::Error),
    #[error("quarantine store schema: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(
        "the key in {path} is not the key this quarantine store was created with: use that key file (--key-file); nothing was read or changed"
    )]
    WrongKey { path: String },
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error("no quarantined message {0:?}: `maildlp quarantine list` shows the ids")]
    NotFound(String),
    #[error("{prefix:?} matches {count} messages: give more of the id")]
    Ambiguous { prefix: String, count: usize },
    #[error("message {id} is {status}, not held: nothing was changed")]
    NotHeld { id: String, status: String },
    #[error("message {id}: its content was removed ({status}); only its record and audit remain")]
    NoContent { id: String, status: String },
    #[error("quarantine store: corrupt record {id}: {why}")]
    Corrupt { id: String, why: String },
    #[error("{0}")]
    Conflict(String),
    #[error(
        "no console account {0:?}: `maildlp user list` shows them, `maildlp user add` creates one"
    )]
    NoAccount(String),
}

/// Which database is behind the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Where the store lives: `sqlite:PATH` or `postgres://...`.
#[derive(Clone, PartialEq, Eq)]
pub struct StoreUrl(String);

impl StoreUrl {
    pub fn parse(s: &str) -> Result<StoreUrl, StoreError> {
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            return Ok(StoreUrl(s.to_string()));
        }
        match s.strip_prefix("sqlite:") {
            Some(p) if !p.trim_start_matches("//").is_empty() => Ok(StoreUrl(s.to_string())),
            _ => Err(StoreError::BadUrl(redact(s))),
        }
    }

    /// A SQLite file at `path`.
    pub fn sqlite(path: &Path) -> StoreUrl {
        StoreUrl(format!("sqlite:{}", path.display()))
    }

    pub fn backend(&self) -> Backend {
        if self.0.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        }
    }

    fn sqlite_path(&self) -> Option<PathBuf> {
        let p = self.0.strip_prefix("sqlite:")?;
        let p = p.strip_prefix("//").unwrap_or(p);
        Some(PathBuf::from(p.split('?').next().unwrap_or(p)))
    }
}

/// The URL with any password hidden: connection strings never reach a log or an error.
impl std::fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&redact(&self.0))
    }
}

impl std::fmt::Debug for StoreUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StoreUrl({})", redact(&self.0))
    }
}

fn redact(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://")
        && let Some((userinfo, host)) = rest.split_once('@')
        && let Some((user, _)) = userinfo.split_once(':')
    {
        return format!("{scheme}://{user}:***@{host}");
    }
    url.to_string()
}

/// The quarantine store. Cheap to clone (a pool and a key).
#[derive(Clone, Debug)]
pub struct Store {
    pub(super) pool: AnyPool,
    key: Key,
    backend: Backend,
    node: String,
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// This machine's name, recorded with every held message and audit entry.
pub fn node_name() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".into())
}

impl Store {
    /// Connect, create or upgrade the schema, and check the key. With `create_key`, a key file
    /// is created when it does not exist and the store holds nothing sealed yet; a store that
    /// was created with another key refuses to open.
    pub async fn open(
        url: &StoreUrl,
        key_file: &Path,
        create_key: bool,
    ) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = url.backend();
        let connect_url = match backend {
            Backend::Sqlite => {
                let path = url
                    .sqlite_path()
                    .ok_or_else(|| StoreError::BadUrl(url.to_string()))?;
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
                    && !dir.exists()
                {
                    // A new data directory is the owner's alone: the metadata in the store
                    // (senders, recipients, rules) is in clear.
                    use std::os::unix::fs::DirBuilderExt as _;
                    std::fs::DirBuilder::new()
                        .recursive(true)
                        .mode(0o700)
                        .create(dir)
                        .map_err(|e| StoreError::Connect {
                            url: url.to_string(),
                            source: sqlx::Error::Io(e),
                        })?;
                }
                format!("sqlite:{}?mode=rwc", path.display())
            }
            Backend::Postgres => url.0.clone(),
        };
        let pool = AnyPoolOptions::new()
            .max_connections(match backend {
                Backend::Sqlite => 4,
                Backend::Postgres => 8,
            })
            .acquire_timeout(Duration::from_secs(5))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL with synchronous=FULL: a commit is on disk (fsync'd) when it
                        // returns. busy_timeout lets the CLI and the milter share the file.
                        conn.execute(
                            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                             PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON;",
                        )
                        .await?;
                    }
                    Ok(())
                })
            })
            .connect(&connect_url)
            .await
            .map_err(|e| StoreError::Connect {
                url: url.to_string(),
                source: e,
            })?;
        match backend {
            Backend::Sqlite => {
                sqlx::migrate!("src/quarantine/migrations/sqlite")
                    .run(&pool)
                    .await?
            }
            Backend::Postgres => {
                sqlx::migrate!("src/quarantine/migrations/postgres")
                    .run(&pool)
                    .await?
            }
        }
        let check: Option<Vec<u8>> = sqlx::query("SELECT value FROM meta WHERE name = 'key_check'")
            .fetch_optional(&pool)
            .await?
            .map(|r| r.try_get::<Vec<u8>, _>("value"))
            .transpose()?;
        let key = match Key::load(key_file) {
            Ok(k) => k,
            Err(KeyError::Missing { .. }) if create_key && check.is_none() => {
                Key::create(key_file)?
            }
            Err(e) => return Err(e.into()),
        };
        let path = key_file.display().to_string();
        match check {
            Some(sealed) => {
                key.open("meta/key_check", &sealed)
                    .map_err(|_| StoreError::WrongKey { path: path.clone() })?;
            }
            None => {
                let sealed = key.seal("meta/key_check", KEY_CHECK);
                sqlx::query(
                    "INSERT INTO meta (name, value) VALUES ('key_check', $1) ON CONFLICT (name) DO NOTHING",
                )
                .bind(sealed)
                .execute(&pool)
                .await?;
                // Another node may have created the store at the same moment with its key.
                let stored: Vec<u8> =
                    sqlx::query("SELECT value FROM meta WHERE name = 'key_check'")
                        .fetch_one(&pool)
                        .await?
                        .try_get("value")?;
                key.open("meta/key_check", &stored)
                    .map_err(|_| StoreError::WrongKey { path })?;
            }
        }
        Ok(Store {
            pool,
            key,
            backend,
            node: node_name(),
        })
    }

    pub(super) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn key(&self) -> &Key {
        &self.key
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn node(&self) -> &str {
        &self.node
    }

    /// Close the pool (waits for connections in use).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Store held messages, their audit entries and their notices in one transaction: when this
    /// returns `Ok`, every one of them is committed (on disk for SQLite).
    pub async fn hold_batch(&self, items: &[super::SealedHeld]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for item in items {
            insert_held(&mut tx, item, &self.node).await?;
            for n in &item.notices {
                insert_notice(&mut tx, n, &self.key).await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Queue notices (for rejected messages, digests) in one transaction.
    pub async fn enqueue_notices(&self, notices: &[NewNotice]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for n in notices {
            insert_notice(&mut tx, n, &self.key).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The full id of the message `id_or_prefix` names (a unique prefix is enough).
    pub async fn resolve(&self, id_or_prefix: &str) -> Result<String, StoreError> {
        let prefix = id_or_prefix.trim().to_ascii_lowercase();
        if prefix.is_empty() || !prefix.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
            return Err(StoreError::NotFound(id_or_prefix.to_string()));
        }
        let rows = sqlx::query("SELECT id FROM messages WHERE id LIKE $1 ORDER BY id LIMIT 2")
            .bind(format!("{prefix}%"))
            .fetch_all(&self.pool)
            .await?;
        match rows.len() {
            0 => Err(StoreError::NotFound(id_or_prefix.to_string())),
            1 => Ok(rows[0].try_get("id")?),
            _ => {
                let count: i64 = sqlx::query("SELECT COUNT(*) AS n FROM messages WHERE id LIKE $1")
                    .bind(format!("{prefix}%"))
                    .fetch_one(&self.pool)
                    .await?
                    .try_get("n")?;
                Err(StoreError::Ambiguous {
                    prefix: id_or_prefix.to_string(),
                    count: count as usize,
                })
            }
        }
    }

    /// Messages matching `filter`, newest first.
    pub async fn list(&self, filter: &ListFilter) -> Result<Vec<Summary>, StoreError> {
        let (mut sql, mut binds) = where_clause(
            "SELECT id, received_ms, status, status_ms, node, mode, queue_id, client_addr, sender, \
             recipients, rules, kinds, size, details FROM messages",
            filter,
        );
        sql.push_str(" ORDER BY received_ms DESC, id DESC");
        if filter.limit.is_some() || filter.offset.is_some() {
            binds.push(Bind::Int(
                filter
                    .limit
                    .map(|n| n.min(i64::MAX as usize) as i64)
                    .unwrap_or(i64::MAX),
            ));
            sql.push_str(&format!(" LIMIT ${}", binds.len()));
            binds.push(Bind::Int(
                filter.offset.unwrap_or(0).min(i64::MAX as usize) as i64
            ));
            sql.push_str(&format!(" OFFSET ${}", binds.len()));
        }
        let rows = bind_all(sqlx::query(&sql), binds)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| self.summary(r)).collect()
    }

    /// How many messages match `filter` (its limit and offset aside).
    pub async fn count(&self, filter: &ListFilter) -> Result<u64, StoreError> {
        let (sql, binds) = where_clause("SELECT COUNT(*) AS n FROM messages", filter);
        let n: i64 = bind_all(sqlx::query(&sql), binds)
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?;
        Ok(n.max(0) as u64)
    }

    fn summary(&self, r: &AnyRow) -> Result<Summary, StoreError> {
        let id: String = r.try_get("id")?;
        let status: String = r.try_get("status")?;
        let sealed: Vec<u8> = r.try_get("details")?;
        let recipients: String = r.try_get("recipients")?;
        // A damaged record is flagged, not allowed to hide the others from `list`.
        let (recipients, details) = match serde_json::from_str::<Vec<String>>(&recipients) {
            Ok(list) => (list, self.open_details(&id, &sealed)),
            Err(e) => (
                Vec::new(),
                Err(StoreError::Corrupt {
                    id: id.clone(),
                    why: format!("recipients: {e}"),
                }),
            ),
        };
        Ok(Summary {
            status: status.parse().map_err(|why| StoreError::Corrupt {
                id: id.clone(),
                why,
            })?,
            received_ms: r.try_get("received_ms")?,
            status_ms: r.try_get("status_ms")?,
            node: r.try_get("node")?,
            mode: r.try_get("mode")?,
            queue_id: r.try_get("queue_id")?,
            client_addr: r.try_get("client_addr")?,
            sender: r.try_get("sender")?,
            recipients,
            rules: split_list(&r.try_get::<String, _>("rules")?),
            kinds: split_list(&r.try_get::<String, _>("kinds")?),
            size: r.try_get::<i64, _>("size")? as u64,
            details: details.map_err(|e| e.to_string()),
            id,
        })
    }

    fn open_details(&self, id: &str, sealed: &[u8]) -> Result<Details, StoreError> {
        let plain = self.key.open(&format!("{id}/details"), sealed)?;
        serde_json::from_slice(&plain).map_err(|e| StoreError::Corrupt {
            id: id.to_string(),
            why: format!("details: {e}"),
        })
    }

    /// One message's record and details (not its content).
    pub async fn get(&self, id: &str) -> Result<HeldMessage, StoreError> {
        let id = self.resolve(id).await?;
        let row = sqlx::query(
            "SELECT id, received_ms, status, status_ms, node, mode, queue_id, client_addr, sender, \
             recipients, rules, kinds, size, details, content IS NOT NULL AS has_content \
             FROM messages WHERE id = $1",
        )
        .bind(&id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::NotFound(id.clone()))?;
        let recipients: String = row.try_get("recipients")?;
        serde_json::from_str::<Vec<String>>(&recipients).map_err(|e| StoreError::Corrupt {
            id: id.clone(),
            why: format!("recipients: {e}"),
        })?;
        let summary = self.summary(&row)?;
        let details = match &summary.details {
            Ok(d) => d.clone(),
            Err(_) => {
                let sealed: Vec<u8> = row.try_get("details")?;
                self.open_details(&id, &sealed)?
            }
        };
        let has_content = row_bool(&row, "has_content")?;
        let history = self.history(&id).await?;
        Ok(HeldMessage {
            summary,
            details,
            has_content,
            history,
        })
    }

    /// The original message, decrypted. `actor` and `reason` go to the audit log (reading a
    /// held message in full is an audited action).
    pub async fn raw(&self, id: &str, actor: &str, reason: &str) -> Result<Vec<u8>, StoreError> {
        let id = self.resolve(id).await?;
        let content = self.content(&id).await?;
        self.append_audit(actor, "view_raw", Some(&id), reason)
            .await?;
        Ok(content)
    }

    /// The decrypted content, without an audit entry (for release, which audits itself).
    pub async fn content(&self, id: &str) -> Result<Vec<u8>, StoreError> {
        let row = sqlx::query("SELECT status, content FROM messages WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::NotFound(id.to_string()))?;
        let sealed: Option<Vec<u8>> = row.try_get("content")?;
        let status: String = row.try_get("status")?;
        let sealed = sealed.ok_or_else(|| StoreError::NoContent {
            id: id.to_string(),
            status,
        })?;
        Ok(self.key.open(&format!("{id}/content"), &sealed)?)
    }

    /// Move a held message to `to`, with an audit entry, in one transaction. `keep_content`
    /// false erases the sealed message (delete, expire). Fails, changing nothing, unless the
    /// message is held.
    pub async fn transition(
        &self,
        id: &str,
        to: Status,
        keep_content: bool,
        actor: &str,
        action: &str,
        reason: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let sql = if keep_content {
            "UPDATE messages SET status = $1, status_ms = $2 WHERE id = $3 AND status = 'held'"
        } else {
            "UPDATE messages SET status = $1, status_ms = $2, content = NULL WHERE id = $3 AND status = 'held'"
        };
        let done = sqlx::query(sql)
            .bind(to.as_str())
            .bind(now_ms())
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if done == 0 {
            drop(tx);
            let status = self.status_of(id).await?;
            return Err(StoreError::NotHeld {
                id: id.to_string(),
                status: status.as_str().into(),
            });
        }
        insert_audit(&mut tx, actor, action, Some(id), reason, &self.node).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn status_of(&self, id: &str) -> Result<Status, StoreError> {
        let s: String = sqlx::query("SELECT status FROM messages WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::NotFound(id.to_string()))?
            .try_get("status")?;
        s.parse().map_err(|why| StoreError::Corrupt {
            id: id.to_string(),
            why,
        })
    }

    /// Held messages received before `cutoff_ms` become `expired` (content erased); the
    /// content of released messages received before it is erased too. Returns (expired,
    /// erased). Each message gets an audit entry.
    pub async fn purge(
        &self,
        cutoff_ms: i64,
        actor: &str,
        reason: &str,
    ) -> Result<(usize, usize), StoreError> {
        let held =
            sqlx::query("SELECT id FROM messages WHERE status = 'held' AND received_ms < $1")
                .bind(cutoff_ms)
                .fetch_all(&self.pool)
                .await?;
        let mut expired = 0;
        for r in &held {
            let id: String = r.try_get("id")?;
            match self
                .transition(&id, Status::Expired, false, actor, "expire", reason)
                .await
            {
                Ok(()) => expired += 1,
                // Released or deleted by someone else meanwhile.
                Err(StoreError::NotHeld { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        let released = sqlx::query(
            "SELECT id FROM messages WHERE status = 'released' AND content IS NOT NULL AND received_ms < $1",
        )
        .bind(cutoff_ms)
        .fetch_all(&self.pool)
        .await?;
        let mut erased = 0;
        for r in &released {
            let id: String = r.try_get("id")?;
            let mut tx = self.pool.begin().await?;
            let n = sqlx::query(
                "UPDATE messages SET content = NULL WHERE id = $1 AND status = 'released'",
            )
            .bind(&id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n > 0 {
                insert_audit(&mut tx, actor, "purge", Some(&id), reason, &self.node).await?;
                erased += 1;
            }
            tx.commit().await?;
        }
        Ok((expired, erased))
    }

    /// Append to the audit log.
    pub async fn append_audit(
        &self,
        actor: &str,
        action: &str,
        message_id: Option<&str>,
        reason: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        insert_audit(&mut tx, actor, action, message_id, reason, &self.node).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn history(&self, id: &str) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, at_ms, actor, action, message_id, reason, node FROM audit \
             WHERE message_id = $1 ORDER BY seq",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(audit_entry).collect()
    }

    /// The audit log from `since_ms`, oldest first.
    pub async fn audit(
        &self,
        since_ms: i64,
        limit: Option<usize>,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, at_ms, actor, action, message_id, reason, node FROM audit \
             WHERE at_ms >= $1 ORDER BY seq LIMIT $2",
        )
        .bind(since_ms)
        .bind(limit.map(|n| n as i64).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(audit_entry).collect()
    }

    /// Messages per status.
    pub async fn counts(&self) -> Result<Vec<(Status, u64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT status, COUNT(*) AS n FROM messages GROUP BY status ORDER BY status",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::new();
        for r in rows {
            let s: String = r.try_get("status")?;
            let n: i64 = r.try_get("n")?;
            if let Ok(s) = s.parse() {
                out.push((s, n as u64));
            }
        }
        Ok(out)
    }

    // ---- notices ----

    /// Notices due at `now_ms` that no node is working on, oldest first.
    pub async fn due_notices(&self, now_ms: i64, limit: usize) -> Result<Vec<Notice>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, kind, message_id, recipient, subject, body, attempts FROM notices \
             WHERE status = 'pending' AND due_ms <= $1 AND claimed_until <= $1 \
             ORDER BY due_ms LIMIT $2",
        )
        .bind(now_ms)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::new();
        for r in &rows {
            let id: String = r.try_get("id")?;
            let sealed: Vec<u8> = r.try_get("body")?;
            let body = match self.key.open(&format!("notice/{id}"), &sealed) {
                Ok(b) => String::from_utf8_lossy(&b).into_owned(),
                Err(e) => {
                    self.notice_failed(&id, &e.to_string(), None).await?;
                    continue;
                }
            };
            out.push(Notice {
                kind: r.try_get("kind")?,
                message_id: r.try_get("message_id")?,
                recipient: r.try_get("recipient")?,
                subject: r.try_get("subject")?,
                attempts: r.try_get::<i64, _>("attempts")? as u32,
                body,
                id,
            });
        }
        Ok(out)
    }

    /// Take a notice for sending for `lease`: false when another node took it first.
    pub async fn claim_notice(
        &self,
        id: &str,
        now_ms: i64,
        lease: Duration,
    ) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "UPDATE notices SET claimed_until = $1, attempts = attempts + 1 \
             WHERE id = $2 AND status = 'pending' AND claimed_until <= $3",
        )
        .bind(now_ms + lease.as_millis() as i64)
        .bind(id)
        .bind(now_ms)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    pub async fn notice_sent(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE notices SET status = 'sent', claimed_until = 0, last_error = NULL WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Record a failed attempt: retried at `retry_at_ms`, or failed for good when `None`.
    pub async fn notice_failed(
        &self,
        id: &str,
        error: &str,
        retry_at_ms: Option<i64>,
    ) -> Result<(), StoreError> {
        match retry_at_ms {
            Some(at) => sqlx::query(
                "UPDATE notices SET due_ms = $1, claimed_until = 0, last_error = $2 WHERE id = $3",
            )
            .bind(at)
            .bind(error)
            .bind(id),
            None => sqlx::query(
                "UPDATE notices SET status = 'failed', claimed_until = 0, last_error = $1 WHERE id = $2",
            )
            .bind(error)
            .bind(id),
        }
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Sender notices sent to `recipient` since `since_ms` (the per-sender rate limit).
    pub async fn notices_sent_to(&self, recipient: &str, since_ms: i64) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM notices WHERE recipient = $1 AND status = 'sent' \
             AND kind LIKE 'sender%' AND created_ms >= $2",
        )
        .bind(recipient)
        .bind(since_ms)
        .fetch_one(&self.pool)
        .await?
        .try_get("n")?;
        Ok(n as u64)
    }

    /// Over the rate limit: recorded, never sent.
    pub async fn notice_suppressed(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE notices SET status = 'suppressed', claimed_until = 0 WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Notices per status.
    pub async fn notice_counts(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT status, COUNT(*) AS n FROM notices GROUP BY status ORDER BY status",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("status")?, r.try_get::<i64, _>("n")? as u64)))
            .collect()
    }

    /// Record `name` once across every node: true for the first caller only (daily digest).
    pub async fn mark_once(&self, name: &str) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "INSERT INTO meta (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(now_ms().to_string().into_bytes())
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }
}

enum Bind {
    Text(String),
    Int(i64),
}

fn bind_all<'q>(
    mut q: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>>,
    binds: Vec<Bind>,
) -> sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>> {
    for b in binds {
        q = match b {
            Bind::Text(s) => q.bind(s),
            Bind::Int(i) => q.bind(i),
        };
    }
    q
}

/// `select` with the WHERE clause of `filter` (not its limit) and the values to bind.
fn where_clause(select: &str, filter: &ListFilter) -> (String, Vec<Bind>) {
    let mut sql = format!("{select} WHERE 1 = 1");
    let mut binds: Vec<Bind> = Vec::new();
    let mut next = |sql: &mut String, clause: &str, b: Bind| {
        binds.push(b);
        sql.push_str(&clause.replace('?', &format!("${}", binds.len())));
    };
    if let Some(s) = filter.status {
        next(&mut sql, " AND status = ?", Bind::Text(s.as_str().into()));
    }
    if let Some(r) = &filter.rule {
        next(
            &mut sql,
            " AND rules LIKE ? ESCAPE '\\'",
            Bind::Text(format!("%,{},%", like_escape(r))),
        );
    }
    if let Some(k) = &filter.kind {
        next(
            &mut sql,
            " AND kinds LIKE ? ESCAPE '\\'",
            Bind::Text(format!("%,{},%", like_escape(k))),
        );
    }
    if let Some(g) = &filter.sender {
        next(
            &mut sql,
            " AND LOWER(sender) LIKE ? ESCAPE '\\'",
            Bind::Text(like_escape(&g.to_lowercase()).replace('*', "%")),
        );
    }
    if let Some(t) = filter.since_ms {
        next(&mut sql, " AND received_ms >= ?", Bind::Int(t));
    }
    if let Some(t) = filter.before_ms {
        next(&mut sql, " AND received_ms < ?", Bind::Int(t));
    }
    (sql, binds)
}

fn like_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// `,a,b,` as stored, so that `LIKE '%,a,%'` matches one name exactly.
pub(crate) fn join_list(names: &[String]) -> String {
    format!(",{},", names.join(","))
}

fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .filter(|x| !x.is_empty())
        .map(str::to_string)
        .collect()
}

/// SQLite answers a boolean expression as an integer, PostgreSQL as a boolean.
fn row_bool(row: &AnyRow, col: &str) -> Result<bool, StoreError> {
    match row.try_get::<bool, _>(col) {
        Ok(b) => Ok(b),
        Err(_) => Ok(row.try_get::<i64, _>(col)? != 0),
    }
}

pub(super) fn audit_entry(r: &AnyRow) -> Result<AuditEntry, StoreError> {
    Ok(AuditEntry {
        seq: r.try_get("seq")?,
        at_ms: r.try_get("at_ms")?,
        actor: r.try_get("actor")?,
        action: r.try_get("action")?,
        message_id: r.try_get("message_id")?,
        reason: r.try_get("reason")?,
        node: r.try_get("node")?,
    })
}

pub(super) async fn insert_audit(
    tx: &mut Transaction<'static, Any>,
    actor: &str,
    action: &str,
    message_id: Option<&str>,
    reason: &str,
    node: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO audit (at_ms, actor, action, message_id, reason, node) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(now_ms())
    .bind(actor)
    .bind(action)
    .bind(message_id.map(str::to_string))
    .bind(reason)
    .bind(node)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn insert_notice(
    tx: &mut Transaction<'static, Any>,
    n: &NewNotice,
    key: &Key,
) -> Result<(), StoreError> {
    let id = super::new_id();
    let body = key.seal(&format!("notice/{id}"), n.body.as_bytes());
    let now = now_ms();
    sqlx::query(
        "INSERT INTO notices (id, created_ms, kind, message_id, recipient, subject, body, status, due_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&id)
    .bind(now)
    .bind(&n.kind)
    .bind(n.message_id.clone())
    .bind(&n.recipient)
    .bind(&n.subject)
    .bind(body)
    .bind(if n.suppressed { "suppressed" } else { "pending" })
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn insert_held(
    tx: &mut Transaction<'static, Any>,
    item: &super::SealedHeld,
    node: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO messages (id, received_ms, status, status_ms, node, mode, queue_id, client_addr, \
         sender, sender_domain, recipients, rules, kinds, size, details, content) \
         VALUES ($1, $2, 'held', $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
    )
    .bind(&item.id)
    .bind(item.received_ms)
    .bind(item.received_ms)
    .bind(node)
    .bind(&item.mode)
    .bind(item.queue_id.clone())
    .bind(item.client_addr.clone())
    .bind(&item.sender)
    .bind(super::domain_of(&item.sender))
    .bind(&item.recipients_json)
    .bind(join_list(&item.rules))
    .bind(join_list(&item.kinds))
    .bind(item.size as i64)
    .bind(&item.details)
    .bind(&item.content)
    .execute(&mut **tx)
    .await?;
    insert_audit(
        tx,
        &format!("maildlp@{node}"),
        "hold",
        Some(&item.id),
        &item.audit_reason,
        node,
    )
    .await?;
    Ok(())
}
