//! A private Postfix for end-to-end tests (shared/notes/postfix-test-instance.md): its own
//! config, queue and data directories and loopback ports, smtpd with maildlp as its milter,
//! relaying to a sink the test runs. Include with `#[path = "support/postfix.rs"] mod postfix;`.
//! Needs Debian's postfix (`.ci/install-postfix.sh` installs it) and root, as in CI.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A running private Postfix, stopped when dropped.
pub struct Postfix {
    pub dir: PathBuf,
}

/// Where a private instance listens and relays.
pub struct Ports {
    /// smtpd with maildlp as milter.
    pub smtp: u16,
    /// The relay host every message goes to.
    pub sink: u16,
    /// maildlp's milter (TCP); 0: no milter (the relay tests filter after the queue).
    pub milter: u16,
}

impl Postfix {
    /// Start an instance in `dir`: Debian's master.cf with smtpd on `ports.smtp` and no chroot,
    /// `extra_main` appended to main.cf and `extra_master` to master.cf.
    pub fn start(dir: &Path, ports: &Ports, extra_main: &str, extra_master: &str) -> Postfix {
        let postfix = Path::new("/usr/sbin/postfix");
        assert!(
            postfix.exists(),
            "Postfix is not installed: run `bash .ci/install-postfix.sh` (CI does)"
        );
        for sub in ["queue", "data"] {
            std::fs::create_dir_all(dir.join(sub)).expect("postfix dirs");
        }
        let chown = Command::new("chown")
            .args(["-R", "postfix:postfix"])
            .arg(dir.join("data"))
            .status()
            .expect("chown");
        assert!(
            chown.success(),
            "chown of the data directory failed (run as root)"
        );
        let d = dir.display();
        let (sink, milter) = (ports.sink, ports.milter);
        let milters = if milter == 0 {
            String::new()
        } else {
            format!(
                "smtpd_milters = inet:127.0.0.1:{milter}\n\
                 non_smtpd_milters = inet:127.0.0.1:{milter}\n"
            )
        };
        let main_cf = format!(
            "compatibility_level = 3.6\n\
             queue_directory = {d}/queue\n\
             data_directory = {d}/data\n\
             maillog_file = {d}/maillog\n\
             maillog_file_prefixes = {d}\n\
             myhostname = maildlp-e2e.test\n\
             inet_interfaces = 127.0.0.1\n\
             inet_protocols = ipv4\n\
             mydestination =\n\
             mynetworks = 127.0.0.0/8\n\
             alias_maps =\n\
             alias_database =\n\
             relayhost = [127.0.0.1]:{sink}\n\
             smtp_dns_support_level = disabled\n\
             smtpd_relay_restrictions = permit_mynetworks, reject\n\
             {milters}\
             milter_protocol = 6\n\
             milter_default_action = tempfail\n\
             milter_connect_timeout = 10s\n\
             milter_content_timeout = 60s\n\
             {extra_main}"
        );
        std::fs::write(dir.join("main.cf"), main_cf).expect("main.cf");
        // Debian's master.cf with smtpd on our port and no chroot (the instance has no jail).
        let master = std::fs::read_to_string("/etc/postfix/master.cf").expect("master.cf");
        let mut master: String = master
            .lines()
            .map(|l| {
                let cols: Vec<&str> = l.split_whitespace().collect();
                if l.starts_with('#') || l.starts_with(' ') || cols.len() < 8 {
                    return format!("{l}\n");
                }
                let mut cols: Vec<String> = cols.iter().map(|s| s.to_string()).collect();
                if cols[0] == "smtp" && cols[1] == "inet" {
                    cols[0] = format!("127.0.0.1:{}", ports.smtp);
                }
                cols[4] = "n".into();
                format!("{}\n", cols.join(" "))
            })
            .collect();
        master.push_str(extra_master);
        std::fs::write(dir.join("master.cf"), master).expect("master.cf");
        let pf = Postfix {
            dir: dir.to_path_buf(),
        };
        let out = Command::new(postfix)
            .arg("-c")
            .arg(dir)
            .arg("start")
            .output()
            .expect("postfix start");
        assert!(
            out.status.success(),
            "postfix start failed: {}\n{}\nlog: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            pf.log()
        );
        pf
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("maillog")).unwrap_or_default()
    }

    /// Queue entries as JSON lines.
    pub fn queue(&self) -> String {
        let out = Command::new("/usr/sbin/postqueue")
            .arg("-c")
            .arg(&self.dir)
            .arg("-j")
            .output()
            .expect("postqueue");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        let _ = Command::new("/usr/sbin/postfix")
            .arg("-c")
            .arg(&self.dir)
            .arg("stop")
            .output();
    }
}

/// `maildlp milter`, killed when dropped.
pub struct Milter(pub Child);

impl Drop for Milter {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[path = "smtp_sink.rs"]
mod smtp_sink;
#[allow(unused_imports)]
pub use smtp_sink::{Delivery, Sink};

/// One message to submit over SMTP: envelope and content (CRLF lines, ending in CRLF).
pub struct Outgoing<'a> {
    pub from: &'a str,
    pub rcpts: &'a [&'a str],
    pub message: &'a [u8],
}

/// Submit `messages` over one SMTP connection to `127.0.0.1:port`, one transaction each. For
/// each: Ok with the first refusal (greeting, MAIL, RCPT, DATA) or the reply to the end of DATA;
/// Err when the connection failed or closed (the rest get the same error).
pub fn submit_all(port: u16, messages: &[Outgoing<'_>]) -> Vec<Result<String, String>> {
    use std::io::{BufRead, BufReader, Write};
    let fail = |e: String| messages.iter().map(|_| Err(e.clone())).collect();
    let conn = match std::net::TcpStream::connect(("127.0.0.1", port)) {
        Ok(c) => c,
        Err(e) => return fail(format!("connect to 127.0.0.1:{port}: {e}")),
    };
    let _ = conn.set_read_timeout(Some(std::time::Duration::from_secs(60)));
    let Ok(mut out) = conn.try_clone() else {
        return fail("clone the connection".into());
    };
    let mut r = BufReader::new(conn);
    let mut reply = || -> Result<String, String> {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            match r.read_line(&mut line) {
                Ok(0) => return Err(format!("connection closed after {all:?}")),
                Ok(_) => {}
                Err(e) => return Err(format!("read: {e}")),
            }
            all.push_str(&line);
            if line.len() < 4 || line.as_bytes()[3] != b'-' {
                return Ok(all);
            }
        }
    };
    let mut send = |bytes: &[u8]| out.write_all(bytes).map_err(|e| format!("send: {e}"));
    let greeting = match reply() {
        Ok(g) => g,
        Err(e) => return fail(e),
    };
    if !greeting.starts_with("220") {
        return messages.iter().map(|_| Ok(greeting.clone())).collect();
    }
    let mut one = |m: &Outgoing<'_>, first: bool| -> Result<String, String> {
        if first {
            send(b"EHLO tester.test\r\n")?;
            reply()?;
        } else {
            send(b"RSET\r\n")?;
            reply()?;
        }
        send(format!("MAIL FROM:<{}>\r\n", m.from).as_bytes())?;
        let r1 = reply()?;
        if !r1.starts_with('2') {
            return Ok(r1);
        }
        for rc in m.rcpts {
            send(format!("RCPT TO:<{rc}>\r\n").as_bytes())?;
            let r2 = reply()?;
            if !r2.starts_with('2') {
                return Ok(r2);
            }
        }
        send(b"DATA\r\n")?;
        let r3 = reply()?;
        if !r3.starts_with('3') {
            return Ok(r3);
        }
        let mut wire = Vec::with_capacity(m.message.len() + 64);
        for line in m.message.split_inclusive(|&b| b == b'\n') {
            if line.starts_with(b".") {
                wire.push(b'.');
            }
            wire.extend_from_slice(line);
        }
        if !wire.ends_with(b"\r\n") {
            wire.extend_from_slice(b"\r\n");
        }
        wire.extend_from_slice(b".\r\n");
        send(&wire)?;
        reply()
    };
    let mut results: Vec<Result<String, String>> = Vec::with_capacity(messages.len());
    for (i, m) in messages.iter().enumerate() {
        match one(m, i == 0) {
            Ok(r) => results.push(Ok(r)),
            Err(e) => {
                results.resize(messages.len(), Err(e));
                return results;
            }
        }
    }
    let _ = out.write_all(b"QUIT\r\n");
    results
}

/// Submit one message on its own connection (see [`submit_all`]).
pub fn submit(port: u16, from: &str, rcpts: &[&str], message: &[u8]) -> Result<String, String> {
    submit_all(
        port,
        &[Outgoing {
            from,
            rcpts,
            message,
        }],
    )
    .pop()
    .unwrap_or_else(|| Err("nothing submitted".into()))
}
