//! The review console's security and bad-input behaviour, over plain HTTP against a real
//! `maildlp serve` (its SQLite store, its milter, a loopback SMTP sink). The browser tests
//! (tests/console_browser.rs) cover what a reviewer does; this file covers what an attacker
//! or a careless client does.

#[path = "support/console.rs"]
mod console;

use console::http::{self, enc, get, post};
use console::{Console, ssn_message};

const ADMIN_PW: &str = "admin passphrase for tests";
const REVIEWER_PW: &str = "reviewer passphrase for tests";
/// Synthetic SSN (not a real person's), as the console may show it.
const SSN: &str = "536-22-4817";
const SSN_MASKED: &str = "***-**-4817";

fn setup(name: &str) -> (Console, String) {
    let c = Console::start(name);
    c.add_user("ada", "admin", ADMIN_PW);
    c.add_user("rey", "reviewer", REVIEWER_PW);
    let hostile = "<script>alert('subject')</script> payroll";
    let action = c.send(
        "<b>x</b>@city.test",
        &["sam@example.com"],
        &ssn_message(hostile, "<img src=x onerror=alert(1)>.txt", SSN),
    );
    assert_eq!(
        action, 'd',
        "the SSN message is held (store mode answers discard)"
    );
    let held = c.held();
    assert_eq!(held.len(), 1, "{held:?}");
    let id = held[0]["id"].as_str().expect("id").to_string();
    (c, id)
}

#[test]
fn nothing_without_a_session() {
    let (c, id) = setup("nosession");
    for path in [
        "/",
        "/queue",
        "/queue?status=all",
        &format!("/message/{id}"),
        &format!("/message/{id}/raw"),
        &format!("/message/{id}/release"),
        &format!("/message/{id}/delete"),
        "/bulk?action=delete",
        "/audit",
        "/dashboard",
        "/no/such/page",
    ] {
        let r = get(c.port, path, None);
        assert!(
            r.status == 303 || r.status == 401,
            "GET {path} without a session answered {}",
            r.status
        );
        if r.status == 303 && path != "/" {
            assert!(
                r.header("location")
                    .is_some_and(|l| l.starts_with("/login")),
                "GET {path}: {:?}",
                r.header("location")
            );
        }
        assert!(!r.body.contains("payroll"), "GET {path} leaked the queue");
    }
    for path in [
        format!("/message/{id}/release"),
        format!("/message/{id}/delete"),
        "/bulk".to_string(),
        "/logout".to_string(),
    ] {
        let r = post(c.port, &path, None, "csrf=x&reason=test&action=delete");
        assert_eq!(r.status, 401, "POST {path} without a session");
    }
    // Nothing changed.
    assert_eq!(c.held()[0]["status"], "held");
    assert!(c.sink.deliveries().is_empty());
    // Machines' endpoints are open and hold counts only.
    let m = get(c.port, "/metrics", None);
    assert_eq!(m.status, 200);
    assert!(
        m.body
            .contains("maildlp_messages_total{action=\"quarantine\"} 1"),
        "{}",
        m.body
    );
    assert!(
        m.body
            .contains("maildlp_quarantine_messages{status=\"held\"} 1"),
        "{}",
        m.body
    );
    assert!(
        m.body.contains("maildlp_findings_total{kind=\"us_ssn\"} 1"),
        "{}",
        m.body
    );
    assert!(
        m.body.contains("maildlp_scan_duration_seconds_bucket"),
        "{}",
        m.body
    );
    assert!(
        !m.body.contains("4817") && !m.body.contains("city.test"),
        "{}",
        m.body
    );
    let h = get(c.port, "/healthz", None);
    assert_eq!(h.status, 200);
    assert!(h.body.contains("\"store\":\"ok\"") && h.body.contains("\"policy\":\"loaded\""));
}

#[test]
fn forms_need_their_csrf_token() {
    let (c, id) = setup("csrf");
    let cookie = c.login("rey", REVIEWER_PW);
    for form in [
        "reason=because",
        "csrf=&reason=because",
        "csrf=0000&reason=because",
    ] {
        let r = post(
            c.port,
            &format!("/message/{id}/delete"),
            Some(&cookie),
            form,
        );
        assert_eq!(r.status, 403, "{form}: {}", r.body);
        assert!(r.body.contains("security token"), "{}", r.body);
    }
    // The login form too (double-submit cookie).
    let r = post(c.port, "/login", None, "csrf=abc&username=ada&password=x");
    assert_eq!(r.status, 403);
    assert_eq!(c.held()[0]["status"], "held");
    // With the token, it works.
    let page = get(c.port, &format!("/message/{id}/delete"), Some(&cookie));
    let token = page.hidden("csrf").expect("csrf on the confirmation form");
    let r = post(
        c.port,
        &format!("/message/{id}/delete"),
        Some(&cookie),
        &format!("csrf={token}&reason={}", enc("duplicate of ticket 12")),
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(c.held()[0]["status"], "deleted");
}

#[test]
fn reviewers_see_masked_evidence_only() {
    let (c, id) = setup("roles");
    let cookie = c.login("rey", REVIEWER_PW);
    let page = get(c.port, &format!("/message/{id}"), Some(&cookie));
    assert_eq!(page.status, 200);
    assert!(page.body.contains(SSN_MASKED), "masked evidence shown");
    assert!(page.body.contains("<mark>"), "evidence highlighted");
    assert!(
        !page.body.contains(SSN) && !page.body.contains("536224817"),
        "no clear value"
    );
    for path in [
        format!("/message/{id}/raw"),
        format!("/message/{id}/raw?download=1"),
        "/audit".to_string(),
        "/dashboard".to_string(),
    ] {
        let r = get(c.port, &path, Some(&cookie));
        assert_eq!(r.status, 403, "reviewer GET {path}");
        assert!(!r.body.contains(SSN));
    }
    // An admin can read the raw message, and that is audited.
    let admin = c.login("ada", ADMIN_PW);
    let raw = get(c.port, &format!("/message/{id}/raw"), Some(&admin));
    assert_eq!(raw.status, 200);
    assert!(
        raw.header("content-type")
            .is_some_and(|t| t.starts_with("text/plain"))
    );
    assert!(raw.body.contains(SSN), "the admin sees the original");
    let dl = get(
        c.port,
        &format!("/message/{id}/raw?download=1"),
        Some(&admin),
    );
    assert_eq!(dl.header("content-type"), Some("message/rfc822"));
    let audit = get(c.port, "/audit?action=view_raw", Some(&admin));
    assert_eq!(audit.status, 200);
    assert!(audit.body.contains("console:ada"), "{}", audit.body);
    assert!(audit.body.contains("viewed in the console"));
    assert!(audit.body.contains("downloaded in the console"));
}

#[test]
fn hostile_names_are_shown_escaped() {
    let (c, id) = setup("xss");
    let cookie = c.login("ada", ADMIN_PW);
    for path in ["/queue".to_string(), format!("/message/{id}")] {
        let r = get(c.port, &path, Some(&cookie));
        assert_eq!(r.status, 200, "{path}");
        assert!(
            !r.body.contains("<script>alert"),
            "{path}: script in the page"
        );
        assert!(
            !r.body.contains("<img src=x"),
            "{path}: markup from a file name"
        );
        assert!(
            !r.body.contains("<b>x</b>"),
            "{path}: markup from the sender"
        );
        assert!(
            r.body.contains("&lt;script&gt;"),
            "{path}: subject shown, escaped"
        );
        assert!(
            r.header("content-security-policy")
                .is_some_and(|p| p.contains("default-src 'none'")),
            "{path}: CSP"
        );
    }
    let page = get(c.port, &format!("/message/{id}"), Some(&cookie));
    assert!(
        page.body.contains("&lt;img src=x"),
        "file name shown, escaped"
    );
}

#[test]
fn logout_kills_the_session() {
    let (c, _) = setup("logout");
    let cookie = c.login("rey", REVIEWER_PW);
    let q = get(c.port, "/queue", Some(&cookie));
    assert_eq!(q.status, 200);
    let token = q.hidden("csrf").expect("logout form token");
    let out = post(c.port, "/logout", Some(&cookie), &format!("csrf={token}"));
    assert_eq!(out.status, 303);
    assert!(
        out.set_cookie_line("maildlp_session")
            .is_some_and(|l| l.contains("Max-Age=0"))
    );
    // The old cookie, replayed, is dead.
    let again = get(c.port, "/queue", Some(&cookie));
    assert_eq!(again.status, 303, "a logged-out session still works");
    // Cookies are HttpOnly and SameSite=Strict (Secure under TLS).
    let r = c.try_login("rey", REVIEWER_PW);
    let line = r.set_cookie_line("maildlp_session").expect("cookie");
    assert!(
        line.contains("HttpOnly") && line.contains("SameSite=Strict"),
        "{line}"
    );
    // A disabled account's sessions end at once.
    let cookie = c.login("rey", REVIEWER_PW);
    let (ok, _, err) = c.cli(&["user", "disable", "rey"], "");
    assert!(ok, "{err}");
    assert_eq!(get(c.port, "/queue", Some(&cookie)).status, 303);
    assert_eq!(c.try_login("rey", REVIEWER_PW).status, 401);
}

#[test]
fn a_locked_account_stays_locked_under_a_burst() {
    let (c, _) = setup("lockout");
    for _ in 0..5 {
        let r = c.try_login("rey", "wrong password guess");
        assert_eq!(r.status, 401);
        assert!(
            r.body.contains("Wrong account name or password"),
            "{}",
            r.body
        );
    }
    // Locked now: a burst of attempts, the right password among them, all refused.
    let handles: Vec<_> = (0..12)
        .map(|i| {
            let port = c.port;
            std::thread::spawn(move || {
                let page = get(port, "/login", None);
                let cookie = page.set_cookie("maildlp_login").expect("cookie");
                let token = page.hidden("csrf").expect("token");
                let pw = if i % 3 == 0 {
                    REVIEWER_PW
                } else {
                    "another guess here"
                };
                post(
                    port,
                    "/login",
                    Some(&cookie),
                    &format!("csrf={token}&username=rey&password={}", enc(pw)),
                )
                .status
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().expect("thread"), 401);
    }
    let r = c.try_login("rey", REVIEWER_PW);
    assert_eq!(r.status, 401);
    assert!(r.body.contains("locked"), "{}", r.body);
    // Another account is not affected; the lockout is in the audit log.
    let admin = c.login("ada", ADMIN_PW);
    let audit = get(c.port, "/audit?action=lockout", Some(&admin));
    assert!(
        audit.body.contains("lockout") && audit.body.contains("rey"),
        "{}",
        audit.body
    );
    let (_, list, _) = c.cli(&["user", "list"], "");
    assert!(list.contains("rey\treviewer\tlocked until"), "{list}");
    // A new password unlocks.
    let (ok, _, err) = c.cli(&["user", "passwd", "rey"], "a brand new passphrase\n");
    assert!(ok, "{err}");
    c.login("rey", "a brand new passphrase");
}

#[test]
fn bad_input_gets_a_clear_page() {
    let (c, id) = setup("badinput");
    let cookie = c.login("ada", ADMIN_PW);
    let cases: Vec<(String, u16)> = vec![
        ("/queue?page=99999999999999999999999".into(), 400),
        ("/queue?page=-3".into(), 400),
        ("/queue?page=abc".into(), 400),
        ("/queue?page=1000000".into(), 200),
        ("/queue?status=bogus".into(), 400),
        ("/queue?since=yesterday".into(), 400),
        ("/queue?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E".into(), 200),
        ("/message/00000000-0000-0000-0000-000000000000".into(), 404),
        ("/message/..%2F..%2Fetc%2Fpasswd".into(), 404),
        ("/message/%3Cscript%3E".into(), 404),
        ("/audit?page=0".into(), 200),
        ("/bulk?action=explode".into(), 400),
        ("/nothing-here".into(), 404),
    ];
    for (path, want) in cases {
        let r = get(c.port, &path, Some(&cookie));
        assert_eq!(r.status, want, "GET {path}: {}", r.body);
        assert!(
            r.body.contains("<html"),
            "GET {path}: a page, not a bare error"
        );
        assert!(!r.body.contains("panicked") && !r.body.contains("RUST_BACKTRACE"));
    }
    let page = get(c.port, "/queue", Some(&cookie));
    let token = page.hidden("csrf").expect("token");
    for (form, want) in [
        ("%%%".to_string(), 403),
        (format!("csrf={token}"), 400),
        (format!("csrf={token}&reason="), 400),
        (format!("csrf={token}&reason={}", "x".repeat(70_000)), 413),
    ] {
        let r = post(
            c.port,
            &format!("/message/{id}/delete"),
            Some(&cookie),
            &form,
        );
        assert_eq!(
            r.status,
            want,
            "POST {}…: {}",
            &form[..form.len().min(30)],
            r.body
        );
    }
    // A malformed request line or a garbage stream never takes the server down.
    let r = http::raw(c.port, b"\x00\x01\x02 garbage\r\n\r\n");
    assert!(r.status == 400 || r.status == 0, "{}", r.status);
    assert_eq!(get(c.port, "/healthz", None).status, 200);
    assert_eq!(
        c.held()[0]["status"],
        "held",
        "nothing changed by bad input"
    );
}

/// One HTTPS request to the console, trusting only `ca` (its self-signed certificate).
fn https(port: u16, ca: &[u8], request: String) -> http::Response {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio_rustls::rustls;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(rustls::pki_types::CertificateDer::from(ca.to_vec()))
            .expect("trust the test certificate");
        let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect");
        let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
        let mut tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
            .connect(name, tcp)
            .await
            .expect("TLS handshake with the console");
        tls.write_all(request.as_bytes()).await.expect("send");
        let mut buf = Vec::new();
        let _ = tls.read_to_end(&mut buf).await;
        http::parse(&buf)
    })
}

#[test]
fn https_with_secure_cookies_when_given_a_certificate() {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("cert");
    let dir = std::env::temp_dir().join(format!("maildlp-tlscert-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let (cert_file, key_file) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_file, cert.cert.pem()).expect("cert file");
    std::fs::write(&key_file, cert.key_pair.serialize_pem()).expect("key file");
    let c = Console::start_with(
        "tls",
        &[
            "--console-tls-cert",
            cert_file.to_str().expect("path"),
            "--console-tls-key",
            key_file.to_str().expect("path"),
        ],
    );
    c.add_user("ada", "admin", ADMIN_PW);
    let ca = cert.cert.der().to_vec();
    let get_req = |path: &str, cookie: &str| {
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{cookie}\r\n")
    };
    let page = https(c.port, &ca, get_req("/login", ""));
    assert_eq!(page.status, 200, "{}", page.body);
    let login_cookie = page.set_cookie_line("maildlp_login").expect("login cookie");
    assert!(login_cookie.contains("; Secure"), "{login_cookie}");
    let token = page.hidden("csrf").expect("token");
    let form = format!("csrf={token}&username=ada&password={}", enc(ADMIN_PW));
    let login = https(
        c.port,
        &ca,
        format!(
            "POST /login HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nCookie: {}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
            login_cookie.split(';').next().unwrap_or(""),
            form.len()
        ),
    );
    assert_eq!(login.status, 303, "{}", login.body);
    let session = login
        .set_cookie_line("maildlp_session")
        .expect("session cookie");
    assert!(
        session.contains("; Secure")
            && session.contains("HttpOnly")
            && session.contains("SameSite=Strict"),
        "{session}"
    );
    let cookie = session.split(';').next().unwrap_or("").to_string();
    let queue = https(
        c.port,
        &ca,
        get_req("/queue", &format!("Cookie: {cookie}\r\n")),
    );
    assert_eq!(queue.status, 200);
    assert!(queue.body.contains("ada (admin)"));
    // Plain HTTP on the TLS port gets nothing.
    let plain = get(c.port, "/login", None);
    assert_ne!(plain.status, 200);
    let _ = std::fs::remove_dir_all(&dir);
}
