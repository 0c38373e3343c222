//! The review console: the security team's web pages over the quarantine store, plus
//! `/metrics` (Prometheus) and `/healthz`.
//!
//! Server-rendered HTML (axum + minijinja templates, which escape by default); no page needs
//! JavaScript. Every page but the login page, the stylesheet, `/metrics` and `/healthz` needs a
//! session; every form carries a CSRF token; sessions live in the store (so logout, a disabled
//! account or a new password ends them on every node).

pub mod auth;
pub mod charts;
mod pages;

use crate::metrics::Metrics;
use crate::quarantine::release::NextHop;
use crate::quarantine::store::{Store, StoreError};
use crate::scan::Scanner;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use minijinja::Environment;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

/// The scanner the console uses to show evidence; replaced on SIGHUP with the milter's.
pub type SharedScanner = Arc<RwLock<Arc<Scanner>>>;

/// Everything the console needs, shared by its handlers.
pub struct Console {
    pub store: Store,
    pub metrics: Arc<Metrics>,
    pub scanner: SharedScanner,
    /// Where released mail goes (the MTA's re-injection port).
    pub release_to: NextHop,
    /// Cookies get `Secure` (set when the console is served over TLS).
    pub secure_cookies: bool,
    /// A session ends this long after login, whatever happens.
    pub session_ttl: Duration,
    /// … or after this long without a request.
    pub idle_timeout: Duration,
    /// Rule and kind names for the queue's filters.
    pub rules: Vec<String>,
    pub kinds: Vec<String>,
}

/// Where and how the console listens.
#[derive(Debug, Clone)]
pub struct Listen {
    pub addr: SocketAddr,
    /// PEM certificate chain and private key: serve HTTPS.
    pub tls: Option<(PathBuf, PathBuf)>,
}

/// The console's routes.
pub fn router(console: Arc<Console>) -> Router {
    Router::new()
        .route("/", get(|| async { Redirect::to("/queue") }))
        .route("/login", get(pages::login_page).post(pages::login))
        .route("/logout", post(pages::logout))
        .route("/queue", get(pages::queue))
        .route("/message/{id}", get(pages::message))
        .route(
            "/message/{id}/release",
            get(pages::confirm_release).post(pages::release),
        )
        .route(
            "/message/{id}/delete",
            get(pages::confirm_delete).post(pages::delete),
        )
        .route("/message/{id}/raw", get(pages::raw))
        .route("/bulk", get(pages::confirm_bulk).post(pages::bulk))
        .route("/audit", get(pages::audit))
        .route("/dashboard", get(pages::dashboard))
        .route("/metrics", get(pages::metrics))
        .route("/healthz", get(pages::healthz))
        .route("/static/console.css", get(pages::stylesheet))
        .fallback(pages::not_found)
        .layer(DefaultBodyLimit::max(64 * 1024))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(console)
}

/// Headers on every answer: no framing, no sniffing, no referrer, nothing cached (pages show
/// held mail), and a content policy that allows no script at all.
async fn security_headers(mut res: Response) -> Response {
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}

/// The console's socket, bound (and its certificate read): errors show at start, not later.
pub enum Bound {
    Plain(tokio::net::TcpListener),
    Tls(SocketAddr, axum_server::tls_rustls::RustlsConfig),
}

/// Bind the console's address and read its TLS certificate and key, if any.
pub async fn bind(listen: &Listen) -> anyhow::Result<Bound> {
    use anyhow::Context as _;
    let addr = listen.addr;
    let in_use = || {
        format!(
            "console: cannot listen on {addr} (in use? choose another with --console-listen, or off)"
        )
    };
    match &listen.tls {
        None => Ok(Bound::Plain(
            tokio::net::TcpListener::bind(addr)
                .await
                .with_context(in_use)?,
        )),
        Some((cert, key)) => {
            let _ = rustls::crypto::ring::default_provider().install_default();
            let config = axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key)
                .await
                .with_context(|| {
                    format!(
                        "console: reading the TLS certificate {} and key {} (PEM files)",
                        cert.display(),
                        key.display()
                    )
                })?;
            // Check the port now; axum-server binds again when it starts serving.
            drop(std::net::TcpListener::bind(addr).with_context(in_use)?);
            Ok(Bound::Tls(addr, config))
        }
    }
}

/// Serve the console until `stop` turns true.
pub async fn serve(
    console: Arc<Console>,
    bound: Bound,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let app = router(console).into_make_service_with_connect_info::<SocketAddr>();
    match bound {
        Bound::Plain(listener) => {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stop.wait_for(|s| *s).await;
                })
                .await
                .context("console server")?;
        }
        Bound::Tls(addr, config) => {
            let handle = axum_server::Handle::new();
            let h = handle.clone();
            tokio::spawn(async move {
                let _ = stop.wait_for(|s| *s).await;
                h.graceful_shutdown(Some(Duration::from_secs(10)));
            });
            axum_server::bind_rustls(addr, config)
                .handle(handle)
                .serve(app)
                .await
                .with_context(|| format!("console: serving HTTPS on {addr}"))?;
        }
    }
    Ok(())
}

/// What went wrong, as the user sees it: a page with a status and a sentence, never a trace.
#[derive(Debug)]
pub enum WebError {
    /// No session: log in (then come back to `next`).
    Login {
        next: String,
    },
    /// No session on a form post.
    Unauthorized,
    /// The form's CSRF token is missing or wrong.
    Csrf,
    Forbidden(String),
    NotFound(String),
    BadRequest(String),
    Conflict(String),
    /// A form post over the size limit.
    TooLarge,
    /// The store (or another service) failed; logged.
    Unavailable(String),
}

impl From<StoreError> for WebError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(_) | StoreError::Ambiguous { .. } => {
                WebError::NotFound("No quarantined message has that id.".into())
            }
            StoreError::NotHeld { .. } | StoreError::NoContent { .. } => {
                WebError::Conflict(e.to_string())
            }
            other => {
                tracing::error!("console: {other}");
                WebError::Unavailable(
                    "The quarantine store did not answer. Try again in a moment; if it lasts, check `maildlp serve`'s log."
                        .into(),
                )
            }
        }
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let (status, title, text) = match self {
            WebError::Login { next } => {
                let to = format!("/login?next={}", urlencode(&next));
                return Redirect::to(&to).into_response();
            }
            WebError::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                "Not logged in",
                "Your session has ended. Log in again.".to_string(),
            ),
            WebError::Csrf => (
                StatusCode::FORBIDDEN,
                "Form expired",
                "This form was not sent from a current console page (its security token is missing or stale). Go back, reload the page and try again.".to_string(),
            ),
            WebError::Forbidden(t) => (StatusCode::FORBIDDEN, "Not allowed", t),
            WebError::NotFound(t) => (StatusCode::NOT_FOUND, "Not found", t),
            WebError::BadRequest(t) => (StatusCode::BAD_REQUEST, "Bad request", t),
            WebError::Conflict(t) => (StatusCode::CONFLICT, "Not done", t),
            WebError::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "Too large",
                "The form is larger than the console accepts (64 KiB). Shorten the reason and send it again.".to_string(),
            ),
            WebError::Unavailable(t) => (StatusCode::SERVICE_UNAVAILABLE, "Unavailable", t),
        };
        let body = render(
            "error.html",
            minijinja::context! { status => status.as_u16(), title, text },
        )
        .unwrap_or_else(|_| format!("{} {title}: {text}", status.as_u16()));
        (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            body,
        )
            .into_response()
    }
}

/// The templates, parsed once; `.html` templates escape every value unless marked safe.
fn env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        for (name, src) in [
            ("base.html", include_str!("templates/base.html")),
            ("login.html", include_str!("templates/login.html")),
            ("error.html", include_str!("templates/error.html")),
            ("queue.html", include_str!("templates/queue.html")),
            ("message.html", include_str!("templates/message.html")),
            ("confirm.html", include_str!("templates/confirm.html")),
            ("result.html", include_str!("templates/result.html")),
            ("audit.html", include_str!("templates/audit.html")),
            ("dashboard.html", include_str!("templates/dashboard.html")),
        ] {
            if let Err(e) = env.add_template(name, src) {
                // Built in and covered by tests: a broken template is a build defect.
                tracing::error!("console template {name}: {e}");
            }
        }
        env
    })
}

fn render(name: &str, ctx: minijinja::Value) -> Result<String, WebError> {
    env()
        .get_template(name)
        .and_then(|t| t.render(ctx))
        .map_err(|e| {
            tracing::error!("console: rendering {name}: {e:#}");
            WebError::Unavailable("This page could not be drawn; the error is in the log.".into())
        })
}

/// Percent-encode for a query string value.
pub fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A cookie's value from the request.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_parses() {
        for name in [
            "base.html",
            "login.html",
            "error.html",
            "queue.html",
            "message.html",
            "confirm.html",
            "result.html",
            "audit.html",
            "dashboard.html",
        ] {
            assert!(env().get_template(name).is_ok(), "{name}");
        }
    }

    #[test]
    fn templates_escape() {
        let html = render(
            "error.html",
            minijinja::context! { status => 400, title => "x", text => "<script>alert(1)</script>" },
        )
        .expect("render");
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
    }

    #[test]
    fn cookies_and_urls() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; maildlp_session=xyz"),
        );
        assert_eq!(cookie(&h, "maildlp_session").as_deref(), Some("xyz"));
        assert_eq!(cookie(&h, "b"), None);
        assert_eq!(urlencode("/queue?x=1&y"), "%2Fqueue%3Fx%3D1%26y");
    }
}
