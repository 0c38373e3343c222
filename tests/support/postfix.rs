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
