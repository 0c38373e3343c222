//! The console's pages and actions.

use super::auth::{self, same_token};
use super::{Console, WebError, charts, cookie, render, urlencode};
use crate::metrics::day_of;
use crate::quarantine::accounts::{Role, Session};
use crate::quarantine::release;
use crate::quarantine::store::now_ms;
use crate::quarantine::{ListFilter, Status, Summary, format_ms, parse_time};
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{ConnectInfo, Form, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use minijinja::context;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;

type St = State<Arc<Console>>;
type Params = Result<Query<HashMap<String, String>>, QueryRejection>;
type Fields = Result<Form<HashMap<String, String>>, FormRejection>;

const SESSION_COOKIE: &str = "maildlp_session";
const LOGIN_COOKIE: &str = "maildlp_login";
/// Rows per queue or audit page.
const PAGE: usize = 50;
/// Messages one bulk action handles at most.
const MAX_BULK: usize = 500;
/// Messages searched for free text (their subjects are sealed, so the search reads them).
const MAX_SEARCHED: usize = 5_000;
/// Excerpts shown for one message.
const MAX_EXCERPTS: usize = 40;

fn params(q: Params) -> Result<HashMap<String, String>, WebError> {
    q.map(|Query(m)| m).map_err(|e| {
        WebError::BadRequest(format!(
            "The address has a malformed query string ({}).",
            e.body_text()
        ))
    })
}

fn fields(f: Fields) -> Result<HashMap<String, String>, WebError> {
    f.map(|Form(m)| m).map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return WebError::TooLarge;
        }
        WebError::BadRequest(format!(
            "The form could not be read ({}). Go back and send it again.",
            e.body_text()
        ))
    })
}

fn get<'a>(m: &'a HashMap<String, String>, k: &str) -> &'a str {
    m.get(k).map(|s| s.trim()).unwrap_or("")
}

/// The session behind the request's cookie, if it is live.
async fn session(c: &Console, headers: &HeaderMap) -> Result<Option<Session>, WebError> {
    let Some(token) = cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    if token.len() != 64 {
        return Ok(None);
    }
    Ok(c.store
        .session_get(&auth::token_hash(&token), c.idle_timeout.as_millis() as i64)
        .await?)
}

/// A page that needs a session: without one, off to the login page (and back here after).
async fn page_session(c: &Console, headers: &HeaderMap, uri: &Uri) -> Result<Session, WebError> {
    session(c, headers).await?.ok_or_else(|| WebError::Login {
        next: uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/queue".into()),
    })
}

/// A form post: needs a session (else 401) and its CSRF token (else 403).
async fn post_session(
    c: &Console,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<Session, WebError> {
    let s = session(c, headers).await?.ok_or(WebError::Unauthorized)?;
    if !same_token(get(form, "csrf"), &s.csrf) {
        return Err(WebError::Csrf);
    }
    Ok(s)
}

fn require_admin(s: &Session) -> Result<(), WebError> {
    if s.user.role == Role::Admin {
        Ok(())
    } else {
        Err(WebError::Forbidden(
            "This page is for administrators. Reviewers see held messages with their evidence masked."
                .into(),
        ))
    }
}

/// Who did it, in the audit log.
fn actor(s: &Session) -> String {
    format!("console:{}", s.user.name)
}

#[derive(Serialize)]
struct UserView {
    name: String,
    role: &'static str,
    admin: bool,
}

fn user_view(s: &Session) -> UserView {
    UserView {
        name: s.user.name.clone(),
        role: s.user.role.as_str(),
        admin: s.user.role == Role::Admin,
    }
}

fn html(body: String) -> Response {
    Html(body).into_response()
}

/// Only a local path may follow a login (no open redirect).
fn safe_next(next: &str) -> String {
    // Browsers drop tabs and new lines inside a URL ("/\t/evil.example" is "//evil.example"):
    // accept printable ASCII only.
    if next.starts_with('/')
        && !next.starts_with("//")
        && !next.contains('\\')
        && next.len() <= 2000
        && next.bytes().all(|b| b.is_ascii_graphic())
    {
        next.to_string()
    } else {
        "/queue".to_string()
    }
}

fn session_cookie(c: &Console, value: &str, max_age: i64) -> String {
    format!(
        "{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{}",
        if c.secure_cookies { "; Secure" } else { "" }
    )
}

// ---- login and logout ----

pub async fn login_page(State(c): St, headers: HeaderMap, q: Params) -> Result<Response, WebError> {
    let q = params(q)?;
    if session(&c, &headers).await?.is_some() {
        return Ok(Redirect::to(&safe_next(get(&q, "next"))).into_response());
    }
    login_form(&c, &headers, get(&q, "next"), "", None, StatusCode::OK)
}

fn login_form(
    c: &Console,
    headers: &HeaderMap,
    next: &str,
    username: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Result<Response, WebError> {
    // Double-submit token for the login form (there is no session yet to hold one).
    let token = cookie(headers, LOGIN_COOKIE)
        .filter(|t| t.len() == 64)
        .unwrap_or_else(auth::new_token);
    let body = render(
        "login.html",
        context! { login_csrf => token, next => safe_next(next), username, error },
    )?;
    let set = format!(
        "{LOGIN_COOKIE}={token}; Path=/login; HttpOnly; SameSite=Strict; Max-Age=3600{}",
        if c.secure_cookies { "; Secure" } else { "" }
    );
    let mut res = (status, Html(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&set) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(res)
}

pub async fn login(
    State(c): St,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    f: Fields,
) -> Result<Response, WebError> {
    let f = fields(f)?;
    let name = get(&f, "username");
    let password = f.get("password").map(String::as_str).unwrap_or("");
    let next = get(&f, "next");
    match cookie(&headers, LOGIN_COOKIE) {
        Some(t) if same_token(get(&f, "csrf"), &t) => {}
        _ => return Err(WebError::Csrf),
    }
    let refuse = |why: &str| {
        login_form(
            &c,
            &headers,
            next,
            name,
            Some(why),
            StatusCode::UNAUTHORIZED,
        )
    };
    if name.is_empty() || name.len() > 64 || password.is_empty() {
        return refuse("Give your account name and password.");
    }
    let user = c.store.user_get(name).await?;
    let now = now_ms();
    if let Some(u) = &user
        && u.locked_until_ms > now
    {
        // Locked: the password is not even checked, right or wrong.
        return refuse(&format!(
            "This account is locked after repeated failed logins until {} UTC. An administrator can unlock it with `maildlp user passwd`.",
            format_ms(u.locked_until_ms)
        ));
    }
    let (hash, usable) = match &user {
        Some(u) if !u.disabled => (u.password_hash.clone(), true),
        _ => (auth::dummy_hash().to_string(), false),
    };
    let pw = password.to_string();
    let ok = tokio::task::spawn_blocking(move || auth::verify_password(&hash, &pw))
        .await
        .unwrap_or(false);
    if !(ok && usable) {
        if user.as_ref().is_some_and(|u| !u.disabled) {
            let failures = c.store.login_failed(name).await?;
            if let Some(d) = auth::lock_for(failures) {
                c.store
                    .lock_account(name, now + d.as_millis() as i64)
                    .await?;
            }
        }
        tracing::warn!(account = %name, from = %peer.ip(), "console login refused");
        return refuse("Wrong account name or password.");
    }
    let token = auth::new_token();
    let csrf = auth::new_token();
    let expires = now + c.session_ttl.as_millis() as i64;
    c.store
        .session_create(
            &auth::token_hash(&token),
            name,
            &csrf,
            expires,
            &format!("from {}", peer.ip()),
        )
        .await?;
    let mut res = Redirect::to(&safe_next(next)).into_response();
    let set = session_cookie(&c, &token, c.session_ttl.as_secs() as i64);
    if let Ok(v) = HeaderValue::from_str(&set) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(res)
}

pub async fn logout(State(c): St, headers: HeaderMap, f: Fields) -> Result<Response, WebError> {
    let f = fields(f)?;
    let s = post_session(&c, &headers, &f).await?;
    if let Some(token) = cookie(&headers, SESSION_COOKIE) {
        c.store.session_delete(&auth::token_hash(&token)).await?;
    }
    c.store.append_audit(&actor(&s), "logout", None, "").await?;
    let mut res = Redirect::to("/login").into_response();
    if let Ok(v) = HeaderValue::from_str(&session_cookie(&c, "", 0)) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(res)
}

// ---- the queue ----

#[derive(Serialize, Default)]
struct QueueFilters {
    status: String,
    rule: String,
    kind: String,
    sender: String,
    since: String,
    before: String,
    q: String,
}

impl QueueFilters {
    fn from(q: &HashMap<String, String>) -> QueueFilters {
        let cap = |s: &str| s.chars().take(200).collect::<String>();
        QueueFilters {
            status: match get(q, "status") {
                "" => "held".into(),
                s => cap(s),
            },
            rule: cap(get(q, "rule")),
            kind: cap(get(q, "kind")),
            sender: cap(get(q, "sender")),
            since: cap(get(q, "since")),
            before: cap(get(q, "before")),
            q: cap(get(q, "q")),
        }
    }

    fn list_filter(&self) -> Result<ListFilter, WebError> {
        let status = match self.status.as_str() {
            "all" => None,
            s => Some(s.parse::<Status>().map_err(WebError::BadRequest)?),
        };
        let time = |s: &str, what: &str| -> Result<Option<i64>, WebError> {
            if s.is_empty() {
                return Ok(None);
            }
            parse_time(s, now_ms())
                .map(Some)
                .map_err(|e| WebError::BadRequest(format!("{what}: {e}")))
        };
        let opt = |s: &str| (!s.is_empty()).then(|| s.to_string());
        Ok(ListFilter {
            status,
            rule: opt(&self.rule),
            kind: opt(&self.kind),
            sender: opt(&self.sender).map(|s| if s.contains('*') { s } else { format!("*{s}*") }),
            since_ms: time(&self.since, "From")?,
            before_ms: time(&self.before, "Before")?,
            limit: None,
            offset: None,
        })
    }

    /// The filters as a query string (without the page).
    fn query(&self) -> String {
        let mut parts = Vec::new();
        for (k, v) in [
            ("status", &self.status),
            ("rule", &self.rule),
            ("kind", &self.kind),
            ("sender", &self.sender),
            ("since", &self.since),
            ("before", &self.before),
            ("q", &self.q),
        ] {
            if !v.is_empty() {
                parts.push(format!("{k}={}", urlencode(v)));
            }
        }
        parts.join("&")
    }

    fn hidden(&self) -> Vec<(&'static str, String)> {
        vec![
            ("status", "held".into()),
            ("rule", self.rule.clone()),
            ("kind", self.kind.clone()),
            ("sender", self.sender.clone()),
            ("since", self.since.clone()),
            ("before", self.before.clone()),
            ("q", self.q.clone()),
        ]
    }
}

fn subject_of(m: &Summary) -> String {
    match &m.details {
        Ok(d) if d.subject.is_empty() => "(no subject)".into(),
        Ok(d) => d.subject.clone(),
        Err(e) => format!("(record damaged: {e})"),
    }
}

fn matches_search(m: &Summary, q: &str) -> bool {
    let q = q.to_lowercase();
    m.id.starts_with(&q)
        || m.sender.to_lowercase().contains(&q)
        || m.recipients.iter().any(|r| r.to_lowercase().contains(&q))
        || m.queue_id.as_deref().is_some_and(|x| x.to_lowercase() == q)
        || m.details.as_ref().is_ok_and(|d| {
            d.subject.to_lowercase().contains(&q)
                || d.from_header
                    .as_deref()
                    .is_some_and(|f| f.to_lowercase().contains(&q))
        })
}

/// The messages a filter selects, one page of them, and how many in all.
async fn select(
    c: &Console,
    f: &QueueFilters,
    offset: usize,
    limit: usize,
) -> Result<(Vec<Summary>, u64), WebError> {
    let mut lf = f.list_filter()?;
    if f.q.is_empty() {
        let total = c.store.count(&lf).await?;
        lf.limit = Some(limit);
        lf.offset = Some(offset);
        Ok((c.store.list(&lf).await?, total))
    } else {
        lf.limit = Some(MAX_SEARCHED);
        let found: Vec<Summary> = c
            .store
            .list(&lf)
            .await?
            .into_iter()
            .filter(|m| matches_search(m, &f.q))
            .collect();
        let total = found.len() as u64;
        Ok((found.into_iter().skip(offset).take(limit).collect(), total))
    }
}

fn page_number(q: &HashMap<String, String>) -> Result<usize, WebError> {
    match get(q, "page") {
        "" => Ok(1),
        p => p
            .parse::<u64>()
            .map(|n| n.clamp(1, 1_000_000) as usize)
            .map_err(|_| {
                WebError::BadRequest(format!(
                    "{:?} is not a page number: pages are counted from 1.",
                    p.chars().take(40).collect::<String>()
                ))
            }),
    }
}

fn human_size(n: u64) -> String {
    match n {
        0..=1023 => format!("{n} B"),
        1024..=1_048_575 => format!("{:.1} KiB", n as f64 / 1024.0),
        _ => format!("{:.1} MiB", n as f64 / 1_048_576.0),
    }
}

pub async fn queue(
    State(c): St,
    headers: HeaderMap,
    uri: Uri,
    q: Params,
) -> Result<Response, WebError> {
    let s = page_session(&c, &headers, &uri).await?;
    let q = params(q)?;
    let f = QueueFilters::from(&q);
    let wanted = page_number(&q)?;
    // The page asked for, or the last one when it is past the end.
    let (mut rows, total) = select(&c, &f, (wanted - 1) * PAGE, PAGE).await?;
    let pages = (total as usize).div_ceil(PAGE).max(1);
    let page = wanted.min(pages);
    if page != wanted {
        rows = select(&c, &f, (page - 1) * PAGE, PAGE).await?.0;
    }
    let counts = c.store.counts().await?;
    let base = f.query();
    let mut tabs = Vec::new();
    let all: u64 = counts.iter().map(|(_, n)| n).sum();
    for st in ["held", "released", "deleted", "expired"] {
        let n = counts
            .iter()
            .find(|(s, _)| s.as_str() == st)
            .map(|(_, n)| *n)
            .unwrap_or(0);
        tabs.push(context! { label => st, n, href => format!("/queue?status={st}"), here => f.status == st });
    }
    tabs.push(context! { label => "all", n => all, href => "/queue?status=all", here => f.status == "all" });
    let view: Vec<minijinja::Value> = rows
        .iter()
        .map(|m| {
            context! {
                id => m.id,
                received => format_ms(m.received_ms).replace('T', " ").trim_end_matches('Z').to_string(),
                sender => if m.sender.is_empty() { "(null sender)".to_string() } else { m.sender.clone() },
                recipient => m.recipients.first().cloned().unwrap_or_default(),
                more => m.recipients.len().saturating_sub(1),
                subject => subject_of(m),
                rules => m.rules,
                kinds => m.kinds,
                size => human_size(m.size),
                status => m.status.as_str(),
            }
        })
        .collect();
    let href = |p: usize| format!("/queue?{base}&page={p}");
    let body = render(
        "queue.html",
        context! {
            user => user_view(&s), csrf => s.csrf, nav => "queue",
            counts => tabs, f => f, rows => view, total,
            first => (page - 1) * PAGE + 1, last => ((page - 1) * PAGE + rows.len()),
            page, pages,
            prev_href => (page > 1).then(|| href(page - 1)),
            next_href => (page < pages).then(|| href(page + 1)),
            rule_options => c.rules, kind_options => c.kinds,
            bulk_query => (f.status == "held" && total > 0).then(|| base.clone()),
        },
    )?;
    Ok(html(body))
}

// ---- one message ----

fn valid_id(id: &str) -> Result<(), WebError> {
    if id.is_empty() || id.len() > 64 || !id.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
        return Err(WebError::NotFound(
            "No quarantined message has that id.".into(),
        ));
    }
    Ok(())
}

/// The message's headers for display, each value with any detected value masked.
fn headers_of(raw: &[u8], c: &Console) -> Vec<(String, String)> {
    use mail_parser::HeaderValue;
    let Some(msg) = mail_parser::MessageParser::default().parse_headers(raw) else {
        return Vec::new();
    };
    let scanner = match c.scanner.read() {
        Ok(s) => s.clone(),
        Err(_) => return Vec::new(),
    };
    msg.headers()
        .iter()
        .take(100)
        .map(|h| {
            let value = match &h.value {
                HeaderValue::Text(t) => t.to_string(),
                HeaderValue::TextList(l) => l.join(", "),
                HeaderValue::Address(a) => a
                    .iter()
                    .map(|x| match (x.name(), x.address()) {
                        (Some(n), Some(a)) => format!("{n} <{a}>"),
                        (None, Some(a)) => a.to_string(),
                        (Some(n), None) => n.to_string(),
                        (None, None) => String::new(),
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
                HeaderValue::DateTime(d) => d.to_rfc3339(),
                _ => {
                    let (a, b) = (h.offset_start as usize, h.offset_end as usize);
                    String::from_utf8_lossy(raw.get(a..b).unwrap_or_default())
                        .split_whitespace()
                        .collect::<Vec<_>>()
                        .join(" ")
                }
            };
            let mut value = scanner.mask_values(&value);
            if value.chars().count() > 400 {
                value = value.chars().take(400).collect::<String>() + "…";
            }
            (h.name.as_str().to_string(), value)
        })
        .collect()
}

pub async fn message(
    State(c): St,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
    q: Params,
) -> Result<Response, WebError> {
    let s = page_session(&c, &headers, &uri).await?;
    let q = params(q)?;
    valid_id(&id)?;
    let m = c.store.get(&id).await?;
    let id = m.summary.id.clone();
    let d = &m.details;
    let (excerpts, parts, note, header_rows) = if m.has_content {
        let raw = c.store.content(&id).await?;
        let scanner = c.scanner.read().map(|s| s.clone()).map_err(|_| {
            WebError::Unavailable("The scanner is being reloaded; try again.".into())
        })?;
        let raw2 = raw.clone();
        let (_, ev) =
            tokio::task::spawn_blocking(move || scanner.scan_with_evidence(&raw2, MAX_EXCERPTS))
                .await
                .map_err(|_| {
                    WebError::Unavailable(
                        "Reading the message failed; the error is in the log.".into(),
                    )
                })?;
        let mut by_place: BTreeMap<String, usize> = BTreeMap::new();
        let mut order: Vec<String> = Vec::new();
        for (loc, n) in &ev.parts {
            if loc == "subject" || loc.ends_with("/name") {
                continue;
            }
            if !by_place.contains_key(loc) {
                order.push(loc.clone());
            }
            *by_place.entry(loc.clone()).or_insert(0) += n;
        }
        let parts: Vec<minijinja::Value> = order
            .iter()
            .map(|loc| {
                let kinds: BTreeSet<&str> = d
                    .findings
                    .iter()
                    .filter(|f| &f.location == loc || f.location.starts_with(&format!("{loc}/")))
                    .map(|f| f.kind.as_str())
                    .collect();
                context! { location => loc, bytes => human_size(by_place[loc] as u64), kinds => kinds }
            })
            .collect();
        let excerpts: Vec<minijinja::Value> = ev
            .excerpts
            .iter()
            .map(|x| context! { location => x.location, kind => x.kind, confidence => x.confidence.as_str(), before => x.before, value => x.value, after => x.after })
            .collect();
        let note = if ev.truncated {
            Some(format!(
                "The first {MAX_EXCERPTS} values are shown; the findings table counts them all."
            ))
        } else if excerpts.is_empty() {
            Some("No value to show in context.".to_string())
        } else {
            None
        };
        (excerpts, parts, note, headers_of(&raw, &c))
    } else {
        (
            Vec::new(),
            Vec::new(),
            Some(format!(
                "The message content was erased ({}); the findings recorded when it was held remain.",
                m.summary.status.as_str()
            )),
            Vec::new(),
        )
    };
    let flash = match get(&q, "done") {
        "released" => Some(
            context! { class => "ok", text => "Released: the message was handed to the mail server for delivery." },
        ),
        "deleted" => Some(
            context! { class => "ok", text => "Deleted: the message content is erased; its record and history remain." },
        ),
        _ => None,
    };
    let rules: Vec<minijinja::Value> = d
        .verdict
        .rules
        .iter()
        .map(|r| context! { rule => r.rule, reason => r.reason, monitor => r.monitor })
        .collect();
    let exceptions: Vec<String> = d
        .verdict
        .exceptions_used
        .iter()
        .map(|e| format!("{} approved by {} for {}", e.reference, e.approver, e.rule))
        .collect();
    let history: Vec<minijinja::Value> = m
        .history
        .iter()
        .map(|a| context! { at => format_ms(a.at_ms), actor => a.actor, action => a.action, reason => a.reason })
        .collect();
    let view = context! {
        id => id, short => id.get(..8).unwrap_or(&id),
        subject => if d.subject.is_empty() { "(no subject)".to_string() } else { d.subject.clone() },
        status => m.summary.status.as_str(), held => m.summary.status == Status::Held,
        has_content => m.has_content,
        received => format_ms(m.summary.received_ms),
        sender => m.summary.sender, recipients => m.summary.recipients,
        client => m.summary.client_addr, queue_id => m.summary.queue_id, node => m.summary.node,
        size => human_size(m.summary.size),
        action => d.verdict.action.to_string(), rules, exceptions,
        findings => d.findings.iter().map(|f| context! { kind => f.kind, confidence => f.confidence.as_str(), count => f.count, location => f.location, masked => f.masked }).collect::<Vec<_>>(),
        excerpts, evidence_note => note, parts,
        encrypted => d.encrypted.iter().map(|e| context! { location => e.location, kind => e.kind }).collect::<Vec<_>>(),
        unscannable => d.unscannable.iter().map(|u| context! { location => u.location, reason => u.reason }).collect::<Vec<_>>(),
        headers => header_rows, history,
    };
    let body = render(
        "message.html",
        context! { user => user_view(&s), csrf => s.csrf, nav => "queue", m => view, flash },
    )?;
    Ok(html(body))
}

fn confirm_page(
    s: &Session,
    id: &str,
    what: &str,
    subject: &str,
    recipients: usize,
) -> Result<Response, WebError> {
    let (heading, explain, button) = if what == "release" {
        (
            "Release this message?".to_string(),
            format!(
                "“{subject}” goes to its {recipients} recipient(s) as it was sent, through the mail server. This cannot be undone."
            ),
            "Release",
        )
    } else {
        (
            "Delete this message?".to_string(),
            format!(
                "“{subject}” is erased from the quarantine and never delivered; its record and history remain. This cannot be undone."
            ),
            "Delete",
        )
    };
    let body = render(
        "confirm.html",
        context! {
            user => user_view(s), csrf => s.csrf, nav => "queue",
            action => what, heading, explain, button,
            post_to => format!("/message/{id}/{what}"), back => format!("/message/{id}"),
            hidden => Vec::<(String, String)>::new(),
        },
    )?;
    Ok(html(body))
}

async fn confirm_one(
    c: &Console,
    headers: &HeaderMap,
    uri: &Uri,
    id: &str,
    what: &str,
) -> Result<Response, WebError> {
    let s = page_session(c, headers, uri).await?;
    valid_id(id)?;
    let m = c.store.get(id).await?;
    if m.summary.status != Status::Held {
        return Err(WebError::Conflict(format!(
            "This message is {}, not held: nothing to {what}.",
            m.summary.status.as_str()
        )));
    }
    confirm_page(
        &s,
        &m.summary.id,
        what,
        &m.details.subject,
        m.summary.recipients.len(),
    )
}

pub async fn confirm_release(
    State(c): St,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    confirm_one(&c, &headers, &uri, &id, "release").await
}

pub async fn confirm_delete(
    State(c): St,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    confirm_one(&c, &headers, &uri, &id, "delete").await
}

fn reason_of(f: &HashMap<String, String>) -> Result<String, WebError> {
    let r = get(f, "reason");
    if r.is_empty() {
        return Err(WebError::BadRequest(
            "Give a reason: it is kept in the audit log with your name.".into(),
        ));
    }
    Ok(r.chars()
        .filter(|c| !c.is_control() || *c == '\n')
        .take(1000)
        .collect())
}

/// Release or delete one message; the error, if any, as the user should read it.
async fn act(c: &Console, s: &Session, id: &str, what: &str, reason: &str) -> Result<(), WebError> {
    if what == "release" {
        release::release(&c.store, &c.release_to, id, &actor(s), reason)
            .await
            .map(|_| ())
            .map_err(|e| match e {
                release::ReleaseError::Store(e) => WebError::from(e),
                other => WebError::Unavailable(other.to_string()),
            })
    } else {
        Ok(c.store
            .transition(id, Status::Deleted, false, &actor(s), "delete", reason)
            .await?)
    }
}

async fn do_one(
    c: &Console,
    headers: &HeaderMap,
    id: &str,
    f: Fields,
    what: &str,
) -> Result<Response, WebError> {
    let f = fields(f)?;
    let s = post_session(c, headers, &f).await?;
    valid_id(id)?;
    let reason = reason_of(&f)?;
    let id = c.store.resolve(id).await?;
    act(c, &s, &id, what, &reason).await?;
    let done = if what == "release" {
        "released"
    } else {
        "deleted"
    };
    Ok(Redirect::to(&format!("/message/{id}?done={done}")).into_response())
}

pub async fn release(
    State(c): St,
    headers: HeaderMap,
    Path(id): Path<String>,
    f: Fields,
) -> Result<Response, WebError> {
    do_one(&c, &headers, &id, f, "release").await
}

pub async fn delete(
    State(c): St,
    headers: HeaderMap,
    Path(id): Path<String>,
    f: Fields,
) -> Result<Response, WebError> {
    do_one(&c, &headers, &id, f, "delete").await
}

pub async fn raw(
    State(c): St,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
    q: Params,
) -> Result<Response, WebError> {
    let s = page_session(&c, &headers, &uri).await?;
    require_admin(&s)?;
    let q = params(q)?;
    valid_id(&id)?;
    let id = c.store.resolve(&id).await?;
    let download = get(&q, "download") == "1";
    let why = if download {
        "downloaded in the console"
    } else {
        "viewed in the console"
    };
    let bytes = c.store.raw(&id, &actor(&s), why).await?;
    let mut res = bytes.into_response();
    let h = res.headers_mut();
    if download {
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("message/rfc822"),
        );
        if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{id}.eml\"")) {
            h.insert(header::CONTENT_DISPOSITION, v);
        }
    } else {
        // Shown as text, never rendered: the message is untrusted.
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
    }
    Ok(res)
}

// ---- bulk ----

fn bulk_action(q: &HashMap<String, String>) -> Result<&'static str, WebError> {
    match get(q, "action") {
        "release" => Ok("release"),
        "delete" => Ok("delete"),
        _ => Err(WebError::BadRequest(
            "A bulk action is release or delete.".into(),
        )),
    }
}

pub async fn confirm_bulk(
    State(c): St,
    headers: HeaderMap,
    uri: Uri,
    q: Params,
) -> Result<Response, WebError> {
    let s = page_session(&c, &headers, &uri).await?;
    let q = params(q)?;
    let what = bulk_action(&q)?;
    let mut f = QueueFilters::from(&q);
    f.status = "held".into();
    let (rows, total) = select(&c, &f, 0, MAX_BULK).await?;
    if rows.is_empty() {
        return Err(WebError::Conflict(
            "No held message matches these filters: nothing to do.".into(),
        ));
    }
    let items: Vec<String> = rows
        .iter()
        .take(20)
        .map(|m| {
            format!(
                "{} — {} — {}",
                format_ms(m.received_ms),
                m.sender,
                subject_of(m)
            )
        })
        .collect();
    let n = rows.len();
    let mut hidden: Vec<(String, String)> = f
        .hidden()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    hidden.push(("action".into(), what.into()));
    hidden.push(("expected".into(), n.to_string()));
    let explain = format!(
        "{} {n} held message(s) matching the filters{}.",
        if what == "release" {
            "Deliver"
        } else {
            "Erase"
        },
        if total as usize > n {
            format!(" (the first {n} of {total}; run it again for the rest)")
        } else {
            String::new()
        }
    );
    let body = render(
        "confirm.html",
        context! {
            user => user_view(&s), csrf => s.csrf, nav => "queue",
            action => what, heading => format!("{} {n} messages?", if what == "release" { "Release" } else { "Delete" }),
            explain, items, more => n.saturating_sub(20),
            button => format!("{} {n} messages", if what == "release" { "Release" } else { "Delete" }),
            post_to => "/bulk", back => format!("/queue?{}", f.query()), hidden,
        },
    )?;
    Ok(html(body))
}

pub async fn bulk(State(c): St, headers: HeaderMap, f: Fields) -> Result<Response, WebError> {
    let f = fields(f)?;
    let s = post_session(&c, &headers, &f).await?;
    let what = bulk_action(&f)?;
    let reason = reason_of(&f)?;
    let mut filters = QueueFilters::from(&f);
    filters.status = "held".into();
    let expected: usize = get(&f, "expected").parse().unwrap_or(MAX_BULK);
    let (rows, _) = select(&c, &filters, 0, expected.clamp(1, MAX_BULK)).await?;
    let mut done = Vec::new();
    let mut failed = Vec::new();
    for m in &rows {
        match act(&c, &s, &m.id, what, &reason).await {
            Ok(()) => done.push(m.id.clone()),
            Err(e) => failed.push(format!("{}: {}", m.id, web_error_text(&e))),
        }
    }
    let body = render(
        "result.html",
        context! {
            user => user_view(&s), csrf => s.csrf, nav => "queue",
            heading => format!("Bulk {what}: {} done, {} not done", done.len(), failed.len()),
            done, failed,
        },
    )?;
    Ok(html(body))
}

fn web_error_text(e: &WebError) -> String {
    match e {
        WebError::Forbidden(t)
        | WebError::NotFound(t)
        | WebError::BadRequest(t)
        | WebError::Conflict(t)
        | WebError::Unavailable(t) => t.clone(),
        other => format!("{other:?}"),
    }
}

// ---- audit log and dashboard ----

pub async fn audit(
    State(c): St,
    headers: HeaderMap,
    uri: Uri,
    q: Params,
) -> Result<Response, WebError> {
    let s = page_session(&c, &headers, &uri).await?;
    require_admin(&s)?;
    let q = params(q)?;
    let wanted = page_number(&q)?;
    let actor_f = get(&q, "actor").chars().take(200).collect::<String>();
    let action_f = get(&q, "action").chars().take(64).collect::<String>();
    let opt = |s: &str| (!s.is_empty()).then(|| s.to_string());
    let (a, b) = (opt(&actor_f), opt(&action_f));
    let (_, total) = c.store.audit_page(a.as_deref(), b.as_deref(), 0, 0).await?;
    let pages = (total as usize).div_ceil(PAGE).max(1);
    let page = wanted.min(pages);
    let (rows, _) = c
        .store
        .audit_page(a.as_deref(), b.as_deref(), (page - 1) * PAGE, PAGE)
        .await?;
    let view: Vec<minijinja::Value> = rows
        .iter()
        .map(|e| context! { seq => e.seq, at => format_ms(e.at_ms), actor => e.actor, action => e.action, message_id => e.message_id, reason => e.reason, node => e.node })
        .collect();
    let base = format!(
        "actor={}&action={}",
        urlencode(&actor_f),
        urlencode(&action_f)
    );
    let href = |p: usize| format!("/audit?{base}&page={p}");
    let body = render(
        "audit.html",
        context! {
            user => user_view(&s), csrf => s.csrf, nav => "audit",
            f => context! { actor => actor_f, action => action_f },
            action_options => ["hold", "release", "release_failed", "delete", "expire", "purge", "view_raw", "login", "logout", "lockout", "user_add", "user_passwd", "user_disable", "user_enable"],
            rows => view, total, page, pages,
            prev_href => (page > 1).then(|| href(page - 1)),
            next_href => (page < pages).then(|| href(page + 1)),
        },
    )?;
    Ok(html(body))
}

/// Days shown on the dashboard.
const DASHBOARD_DAYS: i64 = 30;

pub async fn dashboard(State(c): St, headers: HeaderMap, uri: Uri) -> Result<Response, WebError> {
    let s = page_session(&c, &headers, &uri).await?;
    require_admin(&s)?;
    // What this node counted since the last flush is not in the store yet: flush it first.
    let pending = c.metrics.take_daily();
    if let Err(e) = c.store.stats_add(&pending).await {
        c.metrics.restore_daily(pending);
        return Err(e.into());
    }
    let now = now_ms();
    let days: Vec<String> = (0..DASHBOARD_DAYS)
        .rev()
        .map(|d| day_of(now - d * 86_400_000))
        .collect();
    let rows = c.store.stats_since(&days[0]).await?;
    let mut per_day: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    let mut per_rule: BTreeMap<String, u64> = BTreeMap::new();
    let mut per_kind: BTreeMap<String, u64> = BTreeMap::new();
    let mut totals: BTreeMap<String, u64> = BTreeMap::new();
    for r in &rows {
        match (r.rule.is_empty(), r.kind.is_empty()) {
            (true, true) => {
                *per_day
                    .entry(r.day.clone())
                    .or_default()
                    .entry(r.action.clone())
                    .or_insert(0) += r.n;
                *totals.entry(r.action.clone()).or_insert(0) += r.n;
            }
            (false, _) => *per_rule.entry(r.rule.clone()).or_insert(0) += r.n,
            (true, false) => *per_kind.entry(r.kind.clone()).or_insert(0) += r.n,
        }
    }
    let all: u64 = totals.values().sum();
    let mut total_rows: Vec<(String, String)> = vec![("messages".into(), all.to_string())];
    for (a, _) in charts::ACTION_COLOURS {
        let n = totals.get(*a).copied().unwrap_or(0);
        let pct = if all > 0 {
            n as f64 * 100.0 / all as f64
        } else {
            0.0
        };
        total_rows.push(((*a).to_string(), format!("{n} ({pct:.1} %)")));
    }
    let store_counts: Vec<(String, String)> = c
        .store
        .counts()
        .await?
        .into_iter()
        .map(|(s, n)| (s.as_str().to_string(), n.to_string()))
        .collect();
    let notice_counts: Vec<(String, String)> = c
        .store
        .notice_counts()
        .await?
        .into_iter()
        .map(|(s, n)| (s, n.to_string()))
        .collect();
    let to_rows = |m: BTreeMap<String, u64>| m.into_iter().collect::<Vec<_>>();
    let body = render(
        "dashboard.html",
        context! {
            user => user_view(&s), csrf => s.csrf, nav => "dashboard",
            days => DASHBOARD_DAYS, totals => total_rows, store_counts, notice_counts,
            chart_days => charts::stacked_days(&days, &per_day),
            chart_rules => charts::hbars("chart-rules", &to_rows(per_rule), 20),
            chart_kinds => charts::hbars("chart-kinds", &to_rows(per_kind), 20),
        },
    )?;
    Ok(html(body))
}

// ---- machines ----

/// Prometheus text format. Counts only: nothing about any message.
pub async fn metrics(State(c): St) -> Response {
    if let (Ok(q), Ok(n)) = (c.store.counts().await, c.store.notice_counts().await) {
        let q: Vec<(String, u64)> = q
            .into_iter()
            .map(|(s, n)| (s.as_str().to_string(), n))
            .collect();
        c.metrics.set_store_counts(&q, &n);
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        c.metrics.render(),
    )
        .into_response()
}

/// 200 when the store answers and a policy is loaded, else 503; a line of JSON either way.
pub async fn healthz(State(c): St) -> Response {
    let store = c.store.ping().await;
    let policy = c.metrics.policy_loaded();
    let ok = store.is_ok() && policy;
    let body = format!(
        "{{\"status\":\"{}\",\"store\":\"{}\",\"policy\":\"{}\"}}\n",
        if ok { "ok" } else { "failing" },
        if store.is_ok() { "ok" } else { "unreachable" },
        if policy { "loaded" } else { "not loaded" },
    );
    (
        if ok {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        },
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

pub async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("templates/console.css"),
    )
        .into_response()
}

pub async fn not_found(State(c): St, headers: HeaderMap, uri: Uri) -> Result<Response, WebError> {
    // Without a session, even a missing page is "log in first": no probing for what exists.
    page_session(&c, &headers, &uri).await?;
    Err(WebError::NotFound("There is no such page.".into()))
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn only_local_paths_follow_a_login() {
        assert_eq!(safe_next("/message/abc?x=1"), "/message/abc?x=1");
        for bad in [
            "//evil.example",
            "/\t/evil.example",
            "/\\evil.example",
            "https://evil.example/",
            "/\n/evil.example",
            "/ /x",
            "",
        ] {
            assert_eq!(safe_next(bad), "/queue", "{bad:?}");
        }
    }
}
