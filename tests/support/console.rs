//! `maildlp serve` with its review console for tests: a temporary data directory, loopback
//! ports for the milter and the console, released mail going to a loopback SMTP sink.
//! Messages are put in the quarantine through the milter, as Postfix would.
#![allow(dead_code)]

#[path = "http.rs"]
pub mod http;
#[path = "smtp_sink.rs"]
pub mod smtp_sink;

use std::io::Write as _;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_maildlp")
}

pub struct Console {
    child: Child,
    pub dir: PathBuf,
    pub data_dir: PathBuf,
    pub milter_port: u16,
    pub port: u16,
    pub sink: smtp_sink::Sink,
    pub log: PathBuf,
}

impl Console {
    pub fn start(name: &str) -> Console {
        Self::start_with(name, &[])
    }

    pub fn start_with(name: &str, extra: &[&str]) -> Console {
        let dir =
            std::env::temp_dir().join(format!("maildlp-console-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("test dir");
        let data_dir = dir.join("data");
        let sink = smtp_sink::Sink::start();
        let milter_port = free_port();
        let port = free_port();
        let log = dir.join("serve.log");
        let child = Command::new(bin())
            .args([
                "serve",
                "--listen",
                &format!("inet:127.0.0.1:{milter_port}"),
                "--console-listen",
                &format!("127.0.0.1:{port}"),
                "--release-to",
                &format!("127.0.0.1:{}", sink.port),
                "--data-dir",
            ])
            .arg(&data_dir)
            .args(extra)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("start maildlp serve");
        let c = Console {
            child,
            dir,
            data_dir,
            milter_port,
            port,
            sink,
            log,
        };
        let end = Instant::now() + Duration::from_secs(30);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
                && std::net::TcpStream::connect(("127.0.0.1", milter_port)).is_ok()
            {
                break;
            }
            assert!(
                Instant::now() < end,
                "maildlp serve did not start: {}",
                c.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        c
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Run `maildlp ARGS --data-dir DATA` with `stdin`; (exit ok, stdout, stderr).
    pub fn cli(&self, args: &[&str], stdin: &str) -> (bool, String, String) {
        let mut child = Command::new(bin())
            .args(args)
            .arg("--data-dir")
            .arg(&self.data_dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run maildlp");
        if let Some(mut i) = child.stdin.take() {
            let _ = i.write_all(stdin.as_bytes());
        }
        let out = child.wait_with_output().expect("maildlp output");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    pub fn add_user(&self, name: &str, role: &str, password: &str) {
        let (ok, _, err) = self.cli(
            &["user", "add", name, "--role", role],
            &format!("{password}\n"),
        );
        assert!(ok, "user add {name}: {err}");
    }

    /// Play a message through the milter; the milter's final action (`d` discard when held).
    pub fn send(&self, from: &str, rcpts: &[&str], raw: &[u8]) -> char {
        use maildlp::milter::client::{Client, split_message};
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let s = tokio::net::TcpStream::connect(("127.0.0.1", self.milter_port))
                .await
                .expect("connect to the milter");
            let mut c = Client::negotiate(s).await.expect("negotiate");
            let (headers, body) = split_message(raw);
            let out = c
                .message(from, rcpts, &headers, &body)
                .await
                .expect("message");
            let _ = c.quit().await;
            out.action
        })
    }

    /// Ids of the messages in the store (newest first) with their subject as JSON.
    pub fn held(&self) -> Vec<serde_json::Value> {
        let (ok, out, err) = self.cli(&["quarantine", "list", "--format", "json"], "");
        assert!(ok, "quarantine list: {err}");
        out.lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Log in over HTTP; the session cookie (`maildlp_session=...`).
    pub fn login(&self, user: &str, password: &str) -> String {
        let r = self.try_login(user, password);
        assert_eq!(r.status, 303, "login as {user}: {}", r.body);
        r.set_cookie("maildlp_session").expect("session cookie")
    }

    pub fn try_login(&self, user: &str, password: &str) -> http::Response {
        let page = http::get(self.port, "/login", None);
        let login_cookie = page.set_cookie("maildlp_login").expect("login cookie");
        let token = page.hidden("csrf").expect("login csrf");
        http::post(
            self.port,
            "/login",
            Some(&login_cookie),
            &format!(
                "csrf={token}&username={}&password={}&next=%2Fqueue",
                http::enc(user),
                http::enc(password)
            ),
        )
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A synthetic message the default policy quarantines (a labelled, synthetic SSN to an outside
/// recipient), with a subject and an attachment name of the caller's choosing.
pub fn ssn_message(subject: &str, attachment_name: &str, ssn: &str) -> Vec<u8> {
    format!(
        "From: Pat Clerk <pat@city.test>\r\nTo: Sam Vendor <sam@example.com>\r\nSubject: {subject}\r\n\
Message-ID: <{}@city.test>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n\
--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello Sam,\r\n\r\nas discussed, the employee SSN: {ssn} for the enrolment.\r\n\r\nPat\r\n\
--b1\r\nContent-Type: text/plain; name=\"{attachment_name}\"\r\nContent-Disposition: attachment; filename=\"{attachment_name}\"\r\n\r\n\
Roster line: employee social security number {ssn}\r\n--b1--\r\n",
        subject.len()
    )
    .into_bytes()
}
