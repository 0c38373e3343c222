//! A private Sendmail for end-to-end tests (shared/notes/sendmail-test-instance.md): Debian's
//! sendmail-bin unpacked into a prefix (`.ci/install-sendmail.sh`; Debian's package conflicts
//! with postfix), run as a foreground daemon on a loopback port with its own config, queue, pid
//! and status files in a test directory, maildlp as its `INPUT_MAIL_FILTER`, DNS off, and every
//! message relayed to a loopback sink. Include with `#[path = "support/sendmail.rs"] mod sendmail;`.
//! Needs root, as in CI.
#![allow(dead_code)]

use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Where `.ci/install-sendmail.sh` unpacks Sendmail (same variable, same default).
pub fn prefix() -> PathBuf {
    std::env::var_os("MAILDLP_SENDMAIL_PREFIX")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/maildlp-sendmail"))
}

fn binary(prefix: &Path) -> PathBuf {
    prefix.join("usr/libexec/sendmail/sendmail")
}

/// The host name a test instance runs under.
const HOSTNAME: &str = "maildlp-e2e.test";

/// Whether this process may run a command in its own UTS namespace (root with
/// CAP_SYS_ADMIN, as on CI and the dev machines).
fn own_hostname_possible() -> bool {
    static POSSIBLE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *POSSIBLE.get_or_init(|| {
        Command::new("unshare")
            .args(["--uts", "hostname", HOSTNAME])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// A command running Sendmail. Every run of Sendmail looks up the machine's host name before
/// it reads its config and, when that name has no domain and none can be found (a machine
/// named `vm` in /etc/hosts, say), logs "My unqualified host name unknown; sleeping for retry"
/// and sleeps 60 s. So Sendmail runs in its own UTS namespace under a dotted name, which it
/// takes as it is; where that is not allowed it runs as is (and may take a minute to start).
fn sendmail_command(prefix: &Path) -> Command {
    if own_hostname_possible() {
        let mut c = Command::new("unshare");
        c.args([
            "--uts",
            "sh",
            "-c",
            &format!("hostname {HOSTNAME} && exec \"$0\" \"$@\""),
        ])
        .arg(binary(prefix));
        c
    } else {
        Command::new(binary(prefix))
    }
}

/// The prefix holding Sendmail, or None when it is missing and `MAILDLP_SKIP_SENDMAIL=1`
/// says to skip. Missing without that: the test fails, saying how to install it.
pub fn installed_or_skip() -> Option<PathBuf> {
    let prefix = prefix();
    if binary(&prefix).exists() && prefix.join("usr/share/sendmail/cf/m4/cf.m4").exists() {
        return Some(prefix);
    }
    if std::env::var("MAILDLP_SKIP_SENDMAIL").is_ok_and(|v| v == "1") {
        eprintln!(
            "skipped: no Sendmail in {} and MAILDLP_SKIP_SENDMAIL=1",
            prefix.display()
        );
        return None;
    }
    panic!(
        "Sendmail is not unpacked in {}: run `bash .ci/install-sendmail.sh` as root (CI does), \
         or set MAILDLP_SKIP_SENDMAIL=1 to skip the Sendmail tests",
        prefix.display()
    );
}

/// Where a private instance listens and relays.
pub struct Ports {
    /// The SMTP daemon, with maildlp as its input mail filter.
    pub smtp: u16,
    /// The smart host every message is relayed to.
    pub sink: u16,
    /// maildlp's milter (TCP).
    pub milter: u16,
}

impl Ports {
    /// The filter's socket in Sendmail's notation: `inet:PORT@127.0.0.1`.
    pub fn milter_socket(&self) -> String {
        format!("inet:{}@127.0.0.1", self.milter)
    }
}

/// A running private Sendmail daemon, stopped when dropped.
pub struct Sendmail {
    pub dir: PathBuf,
    pub prefix: PathBuf,
    pub port: u16,
    child: Option<Child>,
}

/// The `.mc` of a test instance: everything under `dir`, one daemon on `127.0.0.1:smtp` (no
/// submission port 587 on every address), DNS off (names from /etc/hosts, no
/// canonification), every message relayed to `[127.0.0.1]:sink`, maildlp as the filter with
/// `F=T` (tempfail when it cannot be reached) on `socket` (`inet:PORT@HOST`, `unix:/path`).
pub fn mc(prefix: &Path, dir: &Path, smtp: u16, sink: u16, socket: &str) -> String {
    let cf = prefix.join("usr/share/sendmail/cf");
    let (cf, d) = (cf.display(), dir.display());
    format!(
        "divert(-1)\n\
         define(`_CF_DIR_', `{cf}/')\n\
         divert(0)dnl\n\
         include(`{cf}/m4/cf.m4')dnl\n\
         VERSIONID(`maildlp end-to-end test instance')dnl\n\
         OSTYPE(`linux')dnl\n\
         define(`confDOMAIN_NAME', `maildlp-e2e.test')dnl\n\
         define(`QUEUE_DIR', `{d}/queue')dnl\n\
         define(`confPID_FILE', `{d}/sendmail.pid')dnl\n\
         define(`STATUS_FILE', `{d}/statistics')dnl\n\
         define(`ALIAS_FILE', `')dnl\n\
         define(`confHOST_STATUS_DIRECTORY', `')dnl\n\
         define(`confSERVICE_SWITCH_FILE', `{d}/service.switch')dnl\n\
         define(`confHOSTS_FILE', `/etc/hosts')dnl\n\
         define(`confBIND_OPTS', `-DNSRCH -DEFNAMES')dnl\n\
         define(`confDONT_PROBE_INTERFACES', `True')dnl\n\
         define(`confDELIVERY_MODE', `background')dnl\n\
         define(`confTO_IDENT', `0s')dnl\n\
         define(`ESMTP_MAILER_ARGS', `TCP $h {sink}')dnl\n\
         define(`SMART_HOST', `esmtp:[127.0.0.1]')dnl\n\
         FEATURE(`no_default_msa')dnl\n\
         FEATURE(`nocanonify')dnl\n\
         FEATURE(`promiscuous_relay')dnl\n\
         FEATURE(`accept_unresolvable_domains')dnl\n\
         FEATURE(`accept_unqualified_senders')dnl\n\
         DAEMON_OPTIONS(`Port={smtp}, Addr=127.0.0.1, Name=MTA')dnl\n\
         INPUT_MAIL_FILTER(`maildlp', `S={socket}, F=T, T=C:10s;S:30s;R:60s;E:5m')dnl\n\
         MAILER(`smtp')dnl\n"
    )
}

impl Sendmail {
    /// Build the config in `dir` (created, mode 0700: Sendmail refuses group- or
    /// world-writable directories) with m4 and start `sendmail -bD` (a daemon in the
    /// foreground, so it is this process's child); wait until it answers on `ports.smtp`.
    pub fn start(prefix: &Path, dir: &Path, ports: &Ports) -> Sendmail {
        Sendmail::start_with(prefix, dir, ports.smtp, ports.sink, &ports.milter_socket())
    }

    /// [`Sendmail::start`] with the filter on any socket Sendmail takes (`unix:/path`: no
    /// directory above it may be group- or world-writable, so not under /tmp).
    pub fn start_with(prefix: &Path, dir: &Path, smtp: u16, sink: u16, socket: &str) -> Sendmail {
        for sub in [dir.to_path_buf(), dir.join("queue")] {
            std::fs::create_dir_all(&sub).expect("sendmail dirs");
            std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o700))
                .expect("chmod 0700 the sendmail dirs");
        }
        std::fs::write(dir.join("service.switch"), "hosts files\naliases files\n")
            .expect("service.switch");
        std::fs::write(dir.join("statistics"), "").expect("statistics");
        let mc = mc(prefix, dir, smtp, sink, socket);
        std::fs::write(dir.join("test.mc"), &mc).expect("test.mc");
        let m4 = Command::new("m4")
            .arg(dir.join("test.mc"))
            .output()
            .unwrap_or_else(|e| {
                panic!("m4 did not run ({e}): run `bash .ci/install-sendmail.sh` (installs m4)")
            });
        assert!(
            m4.status.success() && !m4.stdout.is_empty(),
            "m4 {}: {}",
            dir.join("test.mc").display(),
            String::from_utf8_lossy(&m4.stderr)
        );
        std::fs::write(dir.join("test.cf"), &m4.stdout).expect("test.cf");
        let log = std::fs::File::create(dir.join("sendmail.out")).expect("sendmail.out");
        let err = log.try_clone().expect("sendmail.out");
        let child = sendmail_command(prefix)
            .arg("-C")
            .arg(dir.join("test.cf"))
            .arg("-bD")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(err))
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "start {} ({e}): run `bash .ci/install-sendmail.sh`",
                    binary(prefix).display()
                )
            });
        let mut sm = Sendmail {
            dir: dir.to_path_buf(),
            prefix: prefix.to_path_buf(),
            port: smtp,
            child: Some(child),
        };
        // Without its own host name Sendmail may sleep 60 s before it listens.
        let limit = Duration::from_secs(if own_hostname_possible() { 20 } else { 90 });
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", smtp)).is_err() {
            let exited = sm.child.as_mut().and_then(|c| c.try_wait().ok().flatten());
            assert!(
                exited.is_none() && start.elapsed() < limit,
                "sendmail did not start on 127.0.0.1:{} ({}): {}",
                smtp,
                exited
                    .map(|s| format!("exited {s}"))
                    .unwrap_or_else(|| format!("no answer in {} s", limit.as_secs())),
                sm.output()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        sm
    }

    /// What the daemon wrote on stdout/stderr (Sendmail logs to syslog, which these machines
    /// lack; only startup errors land here).
    pub fn output(&self) -> String {
        std::fs::read_to_string(self.dir.join("sendmail.out")).unwrap_or_default()
    }

    /// `sendmail -C test.cf ARGS` (a queue listing, say).
    pub fn run(&self, args: &[&str]) -> Output {
        sendmail_command(&self.prefix)
            .arg("-C")
            .arg(self.dir.join("test.cf"))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run sendmail")
    }

    /// `sendmail -bp`: the mail queue (quarantined messages are not in it).
    pub fn queue(&self) -> String {
        let out = self.run(&["-bp"]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `sendmail -bp -qQ`: Sendmail's quarantine, with each message's reason.
    pub fn quarantine(&self) -> String {
        let out = self.run(&["-bp", "-qQ"]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Names of the queue directory's files (`qf…` queued, `hf…` quarantined, `df…` bodies).
    pub fn queue_files(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.dir.join("queue"))
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    /// Both queue listings, for assertion messages.
    pub fn context(&self) -> String {
        format!(
            "--- sendmail -bp ---\n{}--- sendmail -bp -qQ ---\n{}--- queue dir ---\n{:?}\n\
             --- sendmail output ---\n{}",
            self.queue(),
            self.quarantine(),
            self.queue_files(),
            self.output()
        )
    }
}

impl Drop for Sendmail {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // SIGTERM lets the daemon stop its children; SIGKILL if it does not exit.
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}
