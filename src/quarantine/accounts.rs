//! What the review console keeps in the store: accounts, sessions, and the daily verdict
//! counts behind its dashboard. Password hashing and the lockout rule live in the console
//! (`crate::web::auth`); this is only storage.

use super::store::{Store, StoreError, now_ms};
use sqlx::Row as _;
use sqlx::any::AnyRow;

/// A console account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub role: Role,
    pub password_hash: String,
    pub disabled: bool,
    pub failed_logins: u32,
    pub locked_until_ms: i64,
    pub created_ms: i64,
}

/// What an account may do: reviewers see masked evidence only; admins can also read the raw
/// message (audited) and see the dashboard and audit log of everyone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Reviewer,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Reviewer => "reviewer",
            Role::Admin => "admin",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "reviewer" => Ok(Role::Reviewer),
            "admin" => Ok(Role::Admin),
            other => Err(format!("unknown role {other:?}: use reviewer or admin")),
        }
    }
}

/// A live console session.
#[derive(Debug, Clone)]
pub struct Session {
    pub user: User,
    pub csrf: String,
    pub created_ms: i64,
    pub last_seen_ms: i64,
    pub expires_ms: i64,
}

/// One row of the daily counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatRow {
    /// `YYYY-MM-DD`, UTC.
    pub day: String,
    pub action: String,
    /// Rule name, or empty for a message no rule fired on.
    pub rule: String,
    /// Kind name, or empty.
    pub kind: String,
    pub n: u64,
}

fn user_row(r: &AnyRow) -> Result<User, StoreError> {
    let name: String = r.try_get("name")?;
    let role: String = r.try_get("role")?;
    Ok(User {
        role: role.parse().map_err(|why| StoreError::Corrupt {
            id: format!("user {name}"),
            why,
        })?,
        password_hash: r.try_get("password_hash")?,
        disabled: r.try_get::<i64, _>("disabled")? != 0,
        failed_logins: r
            .try_get::<i64, _>("failed_logins")?
            .clamp(0, u32::MAX as i64) as u32,
        locked_until_ms: r.try_get("locked_until_ms")?,
        created_ms: r.try_get("created_ms")?,
        name,
    })
}

const USER_COLUMNS: &str =
    "name, role, password_hash, disabled, failed_logins, locked_until_ms, created_ms";

impl Store {
    /// Create an account. Fails when the name is taken.
    pub async fn user_add(
        &self,
        name: &str,
        role: Role,
        password_hash: &str,
        actor: &str,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        let mut tx = self.pool().begin().await?;
        let done = sqlx::query(
            "INSERT INTO users (name, role, password_hash, created_ms, password_ms) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(role.as_str())
        .bind(password_hash)
        .bind(now)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if done == 0 {
            return Err(StoreError::Conflict(format!(
                "the account {name:?} exists already: use `maildlp user passwd {name}` to change its password"
            )));
        }
        super::store::insert_audit(
            &mut tx,
            actor,
            "user_add",
            None,
            &format!("{name} ({})", role.as_str()),
            self.node(),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn user_get(&self, name: &str) -> Result<Option<User>, StoreError> {
        let row = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE name = $1"))
            .bind(name)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(user_row).transpose()
    }

    pub async fn user_list(&self) -> Result<Vec<User>, StoreError> {
        let rows = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users ORDER BY name"))
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(user_row).collect()
    }

    /// Set a new password: unlocks the account and ends its sessions.
    pub async fn user_set_password(
        &self,
        name: &str,
        password_hash: &str,
        actor: &str,
    ) -> Result<(), StoreError> {
        self.user_change(
            name,
            "UPDATE users SET password_ms = $1, password_hash = $3, failed_logins = 0, \
             locked_until_ms = 0 WHERE name = $2",
            Some(password_hash),
            actor,
            "user_passwd",
        )
        .await
    }

    /// Disable (or enable again) an account; disabling ends its sessions.
    pub async fn user_set_disabled(
        &self,
        name: &str,
        disabled: bool,
        actor: &str,
    ) -> Result<(), StoreError> {
        let (sql, action) = if disabled {
            (
                "UPDATE users SET disabled = 1, password_ms = $1 WHERE name = $2",
                "user_disable",
            )
        } else {
            (
                "UPDATE users SET disabled = 0, failed_logins = 0, locked_until_ms = 0, \
                 password_ms = $1 WHERE name = $2",
                "user_enable",
            )
        };
        self.user_change(name, sql, None, actor, action).await
    }

    async fn user_change(
        &self,
        name: &str,
        sql: &str,
        first: Option<&str>,
        actor: &str,
        action: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        let mut q = sqlx::query(sql).bind(now_ms()).bind(name);
        if let Some(v) = first {
            q = q.bind(v);
        }
        let done = q.execute(&mut *tx).await?.rows_affected();
        if done == 0 {
            return Err(StoreError::NoAccount(name.to_string()));
        }
        sqlx::query("DELETE FROM sessions WHERE user_name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        super::store::insert_audit(&mut tx, actor, action, None, name, self.node()).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Count a failed login; returns the number of failures in a row.
    pub async fn login_failed(&self, name: &str) -> Result<u32, StoreError> {
        let row = sqlx::query(
            "UPDATE users SET failed_logins = failed_logins + 1 WHERE name = $1 RETURNING failed_logins",
        )
        .bind(name)
        .fetch_optional(self.pool())
        .await?;
        Ok(match row {
            Some(r) => r
                .try_get::<i64, _>("failed_logins")?
                .clamp(0, u32::MAX as i64) as u32,
            None => 0,
        })
    }

    /// Lock an account until `until_ms` (audited).
    pub async fn lock_account(&self, name: &str, until_ms: i64) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("UPDATE users SET locked_until_ms = $1 WHERE name = $2")
            .bind(until_ms)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        super::store::insert_audit(
            &mut tx,
            name,
            "lockout",
            None,
            &format!(
                "locked until {} after repeated failed logins",
                super::format_ms(until_ms)
            ),
            self.node(),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// A successful login: reset the failure count and open a session (audited).
    pub async fn session_create(
        &self,
        token_hash: &str,
        user: &str,
        csrf: &str,
        expires_ms: i64,
        from: &str,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        let mut tx = self.pool().begin().await?;
        sqlx::query("UPDATE users SET failed_logins = 0, locked_until_ms = 0 WHERE name = $1")
            .bind(user)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO sessions (token_hash, user_name, csrf, created_ms, last_seen_ms, expires_ms) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(token_hash)
        .bind(user)
        .bind(csrf)
        .bind(now)
        .bind(now)
        .bind(expires_ms)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM sessions WHERE expires_ms < $1")
            .bind(now)
            .execute(&mut *tx)
            .await?;
        super::store::insert_audit(&mut tx, user, "login", None, from, self.node()).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The live session behind a token hash, with its account; `None` when unknown, expired,
    /// idle longer than `idle_ms`, or its account is disabled. A found session is touched.
    pub async fn session_get(
        &self,
        token_hash: &str,
        idle_ms: i64,
    ) -> Result<Option<Session>, StoreError> {
        let now = now_ms();
        let row = sqlx::query(
            "SELECT s.csrf, s.created_ms, s.last_seen_ms, s.expires_ms, u.name, u.role, \
             u.password_hash, u.disabled, u.failed_logins, u.locked_until_ms, u.created_ms AS ucreated \
             FROM sessions s JOIN users u ON u.name = s.user_name WHERE s.token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(self.pool())
        .await?;
        let Some(r) = row else { return Ok(None) };
        let role: String = r.try_get("role")?;
        let name: String = r.try_get("name")?;
        let user = User {
            role: role.parse().map_err(|why| StoreError::Corrupt {
                id: format!("user {name}"),
                why,
            })?,
            password_hash: r.try_get("password_hash")?,
            disabled: r.try_get::<i64, _>("disabled")? != 0,
            failed_logins: r
                .try_get::<i64, _>("failed_logins")?
                .clamp(0, u32::MAX as i64) as u32,
            locked_until_ms: r.try_get("locked_until_ms")?,
            created_ms: r.try_get("ucreated")?,
            name,
        };
        let session = Session {
            user,
            csrf: r.try_get("csrf")?,
            created_ms: r.try_get("created_ms")?,
            last_seen_ms: r.try_get("last_seen_ms")?,
            expires_ms: r.try_get("expires_ms")?,
        };
        if session.user.disabled
            || session.expires_ms <= now
            || session.last_seen_ms + idle_ms <= now
        {
            self.session_delete(token_hash).await?;
            return Ok(None);
        }
        // Touch at most once a minute: a page view is not a write.
        if now - session.last_seen_ms > 60_000 {
            sqlx::query("UPDATE sessions SET last_seen_ms = $1 WHERE token_hash = $2")
                .bind(now)
                .bind(token_hash)
                .execute(self.pool())
                .await?;
        }
        Ok(Some(session))
    }

    /// End a session (logout).
    pub async fn session_delete(&self, token_hash: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Add verdict counts (from one node's last interval) to the daily totals.
    pub async fn stats_add(&self, rows: &[StatRow]) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool().begin().await?;
        for r in rows {
            sqlx::query(
                "INSERT INTO stats (day, action, rule, kind, n) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (day, action, rule, kind) DO UPDATE SET n = stats.n + excluded.n",
            )
            .bind(&r.day)
            .bind(&r.action)
            .bind(&r.rule)
            .bind(&r.kind)
            .bind(r.n.min(i64::MAX as u64) as i64)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Daily counts from `since_day` (`YYYY-MM-DD`) on.
    pub async fn stats_since(&self, since_day: &str) -> Result<Vec<StatRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT day, action, rule, kind, n FROM stats WHERE day >= $1 ORDER BY day, action, rule, kind",
        )
        .bind(since_day)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(StatRow {
                    day: r.try_get("day")?,
                    action: r.try_get("action")?,
                    rule: r.try_get("rule")?,
                    kind: r.try_get("kind")?,
                    n: r.try_get::<i64, _>("n")?.max(0) as u64,
                })
            })
            .collect()
    }

    /// A page of the audit log, newest first, optionally for one actor or action; and how
    /// many entries match.
    pub async fn audit_page(
        &self,
        actor: Option<&str>,
        action: Option<&str>,
        offset: usize,
        limit: usize,
    ) -> Result<(Vec<super::AuditEntry>, u64), StoreError> {
        let mut clause = String::from(" WHERE 1 = 1");
        let mut binds: Vec<String> = Vec::new();
        if let Some(a) = actor {
            binds.push(a.to_string());
            clause.push_str(&format!(" AND actor = ${}", binds.len()));
        }
        if let Some(a) = action {
            binds.push(a.to_string());
            clause.push_str(&format!(" AND action = ${}", binds.len()));
        }
        let count_sql = format!("SELECT COUNT(*) AS n FROM audit{clause}");
        let mut count = sqlx::query(&count_sql);
        for b in &binds {
            count = count.bind(b.clone());
        }
        let total = count
            .fetch_one(self.pool())
            .await?
            .try_get::<i64, _>("n")?
            .max(0) as u64;
        let sql = format!(
            "SELECT seq, at_ms, actor, action, message_id, reason, node FROM audit{clause} \
             ORDER BY seq DESC LIMIT ${} OFFSET ${}",
            binds.len() + 1,
            binds.len() + 2
        );
        let mut q = sqlx::query(&sql);
        for b in &binds {
            q = q.bind(b.clone());
        }
        let rows = q
            .bind(limit.min(i64::MAX as usize) as i64)
            .bind(offset.min(i64::MAX as usize) as i64)
            .fetch_all(self.pool())
            .await?;
        let entries = rows
            .iter()
            .map(super::store::audit_entry)
            .collect::<Result<Vec<_>, _>>()?;
        Ok((entries, total))
    }
}
