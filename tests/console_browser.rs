//! The review console in a real browser: Debian's headless Chromium driven over WebDriver
//! (chromedriver, started here) by fantoccini, against a real `maildlp serve` whose held mail
//! came through its milter, with released mail arriving at a loopback SMTP sink. A reviewer's
//! day: log in, filter the queue, open a message and see the masked evidence, release one,
//! delete another, find both in the audit log, look at the dashboard. Screenshots of each page
//! go to target/console-screenshots (or $MAILDLP_SCREENSHOTS); the README shows them.
//!
//! Needs `chromium` and `chromedriver` (`.ci/install-chromium.sh`): missing, the test fails
//! and says so, unless MAILDLP_SKIP_BROWSER=1.

#[path = "support/console.rs"]
mod console;

use console::{Console, free_port, ssn_message};
use fantoccini::{Client, ClientBuilder, Locator};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ADMIN_PW: &str = "admin passphrase for tests";
/// Synthetic SSNs (not real people's) and how the console shows them.
const SSN_A: &str = "536-22-4817";
const SSN_A_MASKED: &str = "***-**-4817";
const SSN_B: &str = "412-55-9083";

struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_driver() -> Option<(Driver, u16)> {
    let have = |b: &str| {
        Command::new(b)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok()
    };
    if !have("chromedriver") || !have("chromium") {
        if std::env::var("MAILDLP_SKIP_BROWSER").as_deref() == Ok("1") {
            eprintln!(
                "chromium/chromedriver missing: browser test skipped (MAILDLP_SKIP_BROWSER=1)"
            );
            return None;
        }
        panic!(
            "chromium and chromedriver are needed: run `sudo bash .ci/install-chromium.sh` (or set MAILDLP_SKIP_BROWSER=1)"
        );
    }
    let port = free_port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let end = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < end, "chromedriver did not listen");
        std::thread::sleep(Duration::from_millis(100));
    }
    Some((Driver(child), port))
}

async fn browser(driver_port: u16, profile: &std::path::Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--window-size=1280,1000",
                format!("--user-data-dir={}", profile.display()),
            ]
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{driver_port}"))
        .await
        .expect("a WebDriver session in Chromium")
}

fn shots_dir() -> PathBuf {
    let dir = std::env::var_os("MAILDLP_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/console-screenshots")
        });
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    dir
}

async fn shot(b: &Client, name: &str) {
    let png = b.screenshot().await.expect("screenshot");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    std::fs::write(shots_dir().join(format!("{name}.png")), png).expect("write screenshot");
}

/// Page loads after a click race the next command: every check below waits (up to 10 s) for
/// the page to reach the expected state, re-finding elements a navigation made stale.
const PATIENCE: Duration = Duration::from_secs(10);

async fn try_text(b: &Client, css: &str) -> Option<String> {
    b.find(Locator::Css(css)).await.ok()?.text().await.ok()
}

/// The text of `css` once `pred` holds for it.
async fn expect_text(b: &Client, css: &str, pred: impl Fn(&str) -> bool) -> String {
    let end = Instant::now() + PATIENCE;
    let mut last = None;
    while Instant::now() < end {
        last = try_text(b, css).await;
        if let Some(t) = &last
            && pred(t)
        {
            return t.clone();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let url = b
        .current_url()
        .await
        .map(|u| u.to_string())
        .unwrap_or_default();
    panic!("{css} on {url}: not as expected, last seen {last:?}");
}

async fn text(b: &Client, css: &str) -> String {
    expect_text(b, css, |_| true).await
}

async fn expect_path(b: &Client, prefix: &str) {
    let end = Instant::now() + PATIENCE;
    loop {
        let path = b
            .current_url()
            .await
            .map(|u| u.path().to_string())
            .unwrap_or_default();
        if path.starts_with(prefix) {
            return;
        }
        assert!(
            Instant::now() < end,
            "expected a page under {prefix}, still on {path}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn expect_rows(b: &Client, n: usize) {
    let end = Instant::now() + PATIENCE;
    loop {
        let got = b
            .find_all(Locator::Css("#queue tbody tr"))
            .await
            .map(|v| v.len())
            .unwrap_or(0);
        if got == n {
            return;
        }
        assert!(
            Instant::now() < end,
            "expected {n} rows in the queue, see {got}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn click(b: &Client, css: &str) {
    b.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("click {css}: {e}"));
}

async fn type_in(b: &Client, css: &str, s: &str) {
    let e = b
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"));
    e.clear().await.expect("clear");
    e.send_keys(s).await.expect("type");
}

#[test]
fn a_reviewers_day_in_chromium() {
    let Some((_driver, driver_port)) = start_driver() else {
        return;
    };
    let c = Console::start("browser");
    c.add_user("ada", "admin", ADMIN_PW);
    assert_eq!(
        c.send(
            "pat@city.test",
            &["sam@example.com"],
            &ssn_message("Payroll export for November", "payroll.txt", SSN_A)
        ),
        'd'
    );
    assert_eq!(
        c.send(
            "lee@city.test",
            &["vendor@example.org"],
            &ssn_message("Benefits roster", "roster.txt", SSN_B)
        ),
        'd'
    );
    assert_eq!(
        c.send(
            "kim@city.test",
            &["hr@example.net", "ops@example.net"],
            &ssn_message("Enrolment form", "form.txt", SSN_B)
        ),
        'd'
    );
    // Clean mail is judged too (counted on the dashboard), not held.
    let clean = b"From: pat@city.test\r\nTo: sam@example.com\r\nSubject: Lunch\r\n\r\nNoon at the usual place?\r\n";
    assert_eq!(c.send("pat@city.test", &["sam@example.com"], clean), 'a');
    let profile = c.dir.join("chromium-profile");

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let b = browser(driver_port, &profile).await;
        let base = format!("http://127.0.0.1:{}", c.port);

        // Without a session: the login page, which brings us back to the queue.
        b.goto(&format!("{base}/queue"))
            .await
            .expect("open the console");
        expect_path(&b, "/login").await;
        shot(&b, "login").await;
        type_in(&b, "#username", "ada").await;
        type_in(&b, "#password", "not the password").await;
        click(&b, "#login").await;
        expect_text(&b, "#login-error", |t| {
            t.contains("Wrong account name or password")
        })
        .await;
        type_in(&b, "#password", ADMIN_PW).await;
        click(&b, "#login").await;
        expect_text(&b, "#whoami", |t| t == "ada (admin)").await;
        expect_path(&b, "/queue").await;
        expect_rows(&b, 3).await;
        expect_text(&b, "#total", |t| t.starts_with("3 messages")).await;
        shot(&b, "queue").await;

        // Filter: by sender, then by free text.
        type_in(&b, "#f-sender", "lee@").await;
        click(&b, "#apply").await;
        expect_text(&b, "#total", |t| t.starts_with("1 message")).await;
        expect_rows(&b, 1).await;
        expect_text(&b, "#queue", |t| t.contains("Benefits roster")).await;
        type_in(&b, "#f-sender", "").await;
        type_in(&b, "#f-q", "payroll").await;
        click(&b, "#apply").await;
        expect_text(&b, "#queue", |t| {
            t.contains("Payroll export for November") && t.contains("us_ssn")
        })
        .await;
        expect_rows(&b, 1).await;

        // The message: masked evidence, highlighted, and no clear value anywhere on the page.
        click(&b, "#queue a.subject").await;
        expect_text(&b, "#subject", |t| t == "Payroll export for November").await;
        expect_text(&b, "#findings", |t| t.contains("us_ssn")).await;
        let marks = b
            .find_all(Locator::Css("#evidence mark"))
            .await
            .expect("marks");
        assert!(!marks.is_empty(), "evidence highlighted");
        for m in &marks {
            assert_eq!(m.text().await.expect("mark"), SSN_A_MASKED);
        }
        assert!(text(&b, "#parts").await.contains("payroll.txt"));
        let source = b.source().await.expect("page source");
        assert!(!source.contains(SSN_A), "the clear SSN is on the page");
        shot(&b, "message").await;

        // Release it, with a reason, through the confirmation step.
        click(&b, "#release").await;
        expect_text(&b, "h1", |t| t.contains("Release this message?")).await;
        type_in(
            &b,
            "#reason",
            "checked with HR: the vendor runs our payroll",
        )
        .await;
        shot(&b, "release-confirm").await;
        click(&b, "#confirm").await;
        expect_text(&b, "#flash", |t| t.starts_with("Released")).await;
        expect_text(&b, "#status", |t| t == "released").await;

        // Delete another.
        b.goto(&format!("{base}/queue?q=roster"))
            .await
            .expect("queue");
        expect_rows(&b, 1).await;
        click(&b, "#queue a.subject").await;
        expect_text(&b, "#subject", |t| t == "Benefits roster").await;
        click(&b, "#delete").await;
        expect_text(&b, "h1", |t| t.contains("Delete this message?")).await;
        type_in(&b, "#reason", "sent to the wrong vendor").await;
        click(&b, "#confirm").await;
        expect_text(&b, "#flash", |t| t.starts_with("Deleted")).await;
        expect_text(&b, "#status", |t| t == "deleted").await;

        // One left held; both actions in the audit log with who and why.
        b.goto(&format!("{base}/queue")).await.expect("queue");
        expect_rows(&b, 1).await;
        click(&b, "a[href='/audit']").await;
        let audit = expect_text(&b, "#audit", |t| t.contains("sent to the wrong vendor")).await;
        assert!(
            audit.contains("release") && audit.contains("checked with HR"),
            "{audit}"
        );
        assert!(
            audit.contains("delete") && audit.contains("sent to the wrong vendor"),
            "{audit}"
        );
        assert!(audit.contains("console:ada"), "{audit}");
        shot(&b, "audit").await;

        // The dashboard draws what was judged.
        click(&b, "a[href='/dashboard']").await;
        expect_text(&b, "#totals", |t| {
            t.contains("messages\n4") || t.contains("messages 4")
        })
        .await;
        b.find(Locator::Css("#chart-days rect"))
            .await
            .expect("a bar per day");
        expect_text(&b, "#chart-kinds", |t| t.contains("us_ssn")).await;
        shot(&b, "dashboard").await;

        // Log out: back to the login page, and the queue is closed again.
        click(&b, "#logout").await;
        expect_path(&b, "/login").await;
        b.goto(&format!("{base}/queue")).await.expect("queue");
        expect_path(&b, "/login").await;
        b.close().await.expect("close the browser");
    });

    // The released message reached the next hop with its envelope and its content.
    let d = c
        .sink
        .wait_for(Duration::from_secs(10), |d| {
            String::from_utf8_lossy(&d.data).contains("Payroll export")
        })
        .expect("the released message at the SMTP sink");
    assert_eq!(d.mail_from, "pat@city.test");
    assert_eq!(d.rcpt_to, vec!["sam@example.com".to_string()]);
    let body = String::from_utf8_lossy(&d.data);
    assert!(body.contains(SSN_A), "released as sent");
    assert!(
        body.contains("X-Maildlp-Released: id="),
        "marked as released"
    );
    assert_eq!(
        c.sink.deliveries().len(),
        1,
        "only the released message went out"
    );
    let held = c.held();
    let status = |s: &str| held.iter().filter(|m| m["status"] == s).count();
    assert_eq!(
        (status("held"), status("released"), status("deleted")),
        (1, 1, 1)
    );
}
