//! A private PostgreSQL server for integration tests: `initdb` in a fresh temporary directory,
//! listening on 127.0.0.1 at a free port, unix socket inside that directory, trust
//! authentication, a role and database `maildlp`. Stopped and removed when dropped.
//!
//! Include it with `#[path = "support/pg.rs"] mod pg;`. Needs Debian's server binaries under
//! `/usr/lib/postgresql/<version>/bin` (`.ci/install-postgres.sh`). As root (as in CI) the
//! server runs as the `postgres` OS user, since `initdb` and `postgres` refuse to run as root;
//! as any other user it runs as that user.
//!
//! Several test binaries (and several tests in one binary) may each start their own cluster at
//! the same time: every cluster has its own directory (process id + counter + time) and port,
//! and a start that loses a port race to another process is retried on a new port.

#![allow(dead_code)]

use std::collections::HashSet;
use std::fs;
use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long a start (or restart) may take until the server accepts connections.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// Where Debian installs the server binaries, one directory per major version.
const PG_LIB: &str = "/usr/lib/postgresql";
/// Prefix of the temporary directories, followed by `<pid>-<counter>-<nanos>`.
const DIR_PREFIX: &str = "maildlp-pg-";
/// The bootstrap superuser, used by [`PgCluster::psql`].
const SUPERUSER: &str = "postgres";
/// The role and database the application connects to.
const APP: &str = "maildlp";

static COUNTER: AtomicUsize = AtomicUsize::new(0);
/// Ports handed out in this process, never handed out twice (a stopped cluster keeps its port).
static PORTS: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// A running (or, after [`PgCluster::stop`], stopped) private PostgreSQL cluster.
pub struct PgCluster {
    dir: PathBuf,
    data: PathBuf,
    socket_dir: PathBuf,
    log: PathBuf,
    bin: PathBuf,
    port: u16,
    /// `Some((uid, gid))` of the `postgres` OS user when this process runs as root.
    run_as: Option<(u32, u32)>,
}

impl PgCluster {
    /// `initdb` + start a private PostgreSQL on 127.0.0.1:<free port>, with a database
    /// `maildlp` owned by the superuser role `maildlp`, trust authentication on loopback and
    /// on the unix socket. Panics (with the server log) if the server does not come up.
    pub fn start() -> PgCluster {
        let bin = server_bin_dir();
        let run_as = if effective_uid() == 0 {
            Some(postgres_user())
        } else {
            None
        };
        reap_stale_clusters(&bin, run_as);
        let dir = unique_dir();
        let mut cluster = PgCluster {
            data: dir.join("data"),
            socket_dir: dir.join("socket"),
            log: dir.join("server.log"),
            dir,
            bin,
            port: 0,
            run_as,
        };
        cluster.prepare_dir();
        cluster.initdb();

        // Another process may bind the port between picking it and the server binding it:
        // then pick another one.
        let mut attempts = 0;
        loop {
            attempts += 1;
            cluster.port = free_port();
            let log_before = cluster.server_log().len();
            let out = cluster.pg_ctl_start();
            if out.status.success() {
                break;
            }
            let log = cluster.server_log();
            let this_attempt = log.get(log_before..).unwrap_or(&log);
            let port_taken = this_attempt.contains("could not bind");
            if !port_taken || attempts == 5 {
                cluster.fail("pg_ctl start failed", &out);
            }
        }
        cluster.wait_accepting(SUPERUSER, SUPERUSER);

        let setup =
            format!("CREATE ROLE {APP} LOGIN SUPERUSER;\nCREATE DATABASE {APP} OWNER {APP};\n");
        let out = cluster.run_psql(SUPERUSER, SUPERUSER, &setup);
        if !out.status.success() {
            cluster.fail("creating the role and database failed", &out);
        }
        cluster.wait_tcp_ready();
        cluster
    }

    /// `postgres://maildlp@127.0.0.1:PORT/maildlp` (role `maildlp` is a superuser and owns the
    /// database; no password).
    pub fn url(&self) -> String {
        format!("postgres://{APP}@127.0.0.1:{}/{APP}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The temporary directory holding the data directory, the socket and `server.log`.
    pub fn dir(&self) -> PathBuf {
        self.dir.clone()
    }

    /// The server log so far.
    pub fn server_log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_else(|e| format!("(cannot read server log: {e})"))
    }

    /// `pg_ctl stop -m fast`: waits until the server is gone and the port is closed. The URL
    /// stays the same; [`PgCluster::restart`] brings it back. Stopping a stopped server does
    /// nothing.
    pub fn stop(&self) {
        if !self.is_running() {
            return;
        }
        let out = self.pg_ctl(&["stop", "-m", "fast", "-w", "-t", "60"]);
        if !out.status.success() {
            self.fail("pg_ctl stop -m fast failed", &out);
        }
    }

    /// Start the same data directory again on the same port; returns once the server accepts
    /// connections over TCP. Panics if the port was taken in the meantime.
    pub fn restart(&self) {
        if self.is_running() {
            self.stop();
        }
        let out = self.pg_ctl_start();
        if !out.status.success() {
            self.fail(
                "pg_ctl start (restart) failed; if the log says the address is in use, another \
                 process took the port while the server was stopped",
                &out,
            );
        }
        self.wait_tcp_ready();
    }

    /// Run SQL through `psql` as the superuser `postgres` on database `maildlp` (over the unix
    /// socket), one statement after the other, stopping at the first error (which panics).
    /// Returns stdout: rows only, unaligned, `|` between columns, one row a line.
    pub fn psql(&self, sql: &str) -> String {
        let out = self.run_psql(SUPERUSER, APP, sql);
        if !out.status.success() {
            panic!(
                "psql failed ({}) on:\n{sql}\n--- stderr ---\n{}--- stdout ---\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr),
                String::from_utf8_lossy(&out.stdout)
            );
        }
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Whether the postmaster of this data directory is running (`pg_ctl status`).
    pub fn is_running(&self) -> bool {
        self.pg_ctl(&["status"]).status.success()
    }

    fn prepare_dir(&self) {
        // The top directory stays the test user's, readable by all so that the `postgres`
        // user can reach the data directory, the socket and the log inside it.
        set_mode(&self.dir, 0o755);
        fs::create_dir(&self.data).expect("create the data directory");
        set_mode(&self.data, 0o700);
        fs::create_dir(&self.socket_dir).expect("create the socket directory");
        set_mode(&self.socket_dir, 0o755);
        fs::File::create(&self.log).expect("create the server log");
        set_mode(&self.log, 0o644);
        if let Some((uid, gid)) = self.run_as {
            for path in [&self.data, &self.socket_dir, &self.log] {
                std::os::unix::fs::chown(path, Some(uid), Some(gid))
                    .unwrap_or_else(|e| panic!("chown {} to postgres: {e}", path.display()));
            }
            let reachable = self
                .server_command(Path::new("test"))
                .arg("-w")
                .arg(&self.data)
                .output()
                .is_ok_and(|out| out.status.success());
            if !reachable {
                panic!(
                    "the postgres OS user cannot reach {}: every directory above it must be \
                     searchable by others (set TMPDIR to a directory such as /tmp)",
                    self.data.display()
                );
            }
        }
        // The kernel takes at most 107 bytes for a unix socket path.
        let socket = self.socket_dir.join(".s.PGSQL.65535");
        assert!(
            socket.as_os_str().len() <= 107,
            "the unix socket path {} is too long for the kernel: set TMPDIR to a shorter directory",
            socket.display()
        );
    }

    fn initdb(&self) {
        let out = self
            .server_command(&self.bin.join("initdb"))
            .arg("-D")
            .arg(&self.data)
            .args([
                "-U",
                SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
            ])
            .output()
            .expect("run initdb");
        if !out.status.success() {
            self.fail("initdb failed", &out);
        }
    }

    fn pg_ctl_start(&self) -> Output {
        // pg_ctl hands -o to /bin/sh, hence the quoting of the socket path.
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -c unix_socket_directories={}",
            self.port,
            shell_quote(&self.socket_dir.to_string_lossy())
        );
        let timeout = READY_TIMEOUT.as_secs().to_string();
        let mut cmd = self.server_command(&self.bin.join("pg_ctl"));
        cmd.arg("-D").arg(&self.data);
        cmd.args(["start", "-w", "-t", &timeout, "-l"])
            .arg(&self.log);
        cmd.arg("-o").arg(options);
        cmd.output().expect("run pg_ctl start")
    }

    /// `pg_ctl -D <data> <args>` as the server's OS user.
    fn pg_ctl(&self, args: &[&str]) -> Output {
        self.server_command(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(&self.data)
            .args(args)
            .output()
            .expect("run pg_ctl")
    }

    /// A command that runs as the server's OS user, in the cluster directory.
    fn server_command(&self, program: &Path) -> Command {
        let mut cmd = Command::new(program);
        cmd.current_dir(&self.dir)
            .env("HOME", &self.dir)
            .stdin(Stdio::null());
        clear_pg_env(&mut cmd);
        if let Some((uid, gid)) = self.run_as {
            // As root, std also drops the supplementary groups before switching the user.
            cmd.uid(uid).gid(gid);
        }
        cmd
    }

    /// psql over the unix socket with `sql` on stdin.
    fn run_psql(&self, user: &str, db: &str, sql: &str) -> Output {
        let socket = self.socket_dir.to_string_lossy().into_owned();
        self.psql_command(&socket, user, db, sql)
    }

    fn psql_command(&self, host: &str, user: &str, db: &str, sql: &str) -> Output {
        let psql = self.bin.join("psql");
        let mut cmd = Command::new(&psql);
        clear_pg_env(&mut cmd);
        cmd.args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", host])
            .arg("-p")
            .arg(self.port.to_string())
            .args(["-U", user, "-d", db])
            .env("PGCONNECT_TIMEOUT", "5")
            .env("PGSSLMODE", "disable")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", psql.display()));
        let mut stdin = child.stdin.take().expect("psql stdin");
        let input = sql.to_owned();
        // Feed stdin from a thread so that a large output cannot deadlock against it.
        let feeder = std::thread::spawn(move || {
            let _ = stdin.write_all(input.as_bytes());
            let _ = stdin.write_all(b"\n");
        });
        let out = child.wait_with_output().expect("wait for psql");
        let _ = feeder.join();
        out
    }

    /// Poll until the server answers `select 1` over the unix socket.
    fn wait_accepting(&self, user: &str, db: &str) {
        let socket = self.socket_dir.to_string_lossy().into_owned();
        self.wait_for_select(&socket, user, db, "the unix socket");
    }

    /// Poll until the application's URL works: TCP on 127.0.0.1, role and database `maildlp`.
    fn wait_tcp_ready(&self) {
        self.wait_for_select("127.0.0.1", APP, APP, "TCP 127.0.0.1");
    }

    fn wait_for_select(&self, host: &str, user: &str, db: &str, what: &str) {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let out = self.psql_command(host, user, db, "SELECT 1");
            if out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "1" {
                return;
            }
            if Instant::now() >= deadline {
                self.fail(
                    &format!(
                        "the server did not accept connections over {what} within {:?}",
                        READY_TIMEOUT
                    ),
                    &out,
                );
            }
            if !self.is_running() {
                self.fail(
                    &format!("the server exited while waiting for it over {what}"),
                    &out,
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn fail(&self, what: &str, out: &Output) -> ! {
        panic!(
            "PostgreSQL test cluster in {} (port {}): {what}\n--- {} ---\n--- stdout ---\n{}\n\
             --- stderr ---\n{}\n--- server log ---\n{}",
            self.dir.display(),
            self.port,
            out.status,
            String::from_utf8_lossy(&out.stdout).trim_end(),
            String::from_utf8_lossy(&out.stderr).trim_end(),
            self.server_log().trim_end()
        );
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        // Never panic here: this also runs while a failed test unwinds.
        let _ = self
            .server_command(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(&self.data)
            .args(["stop", "-m", "immediate", "-w", "-t", "30"])
            .output();
        remove_cluster_dir(&self.dir, &self.data, self.run_as);
    }
}

/// The `bin` directory of the highest PostgreSQL version under /usr/lib/postgresql.
fn server_bin_dir() -> PathBuf {
    let mut best: Option<(Vec<u32>, PathBuf)> = None;
    if let Ok(entries) = fs::read_dir(PG_LIB) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Ok(version) = name
                .split('.')
                .map(str::parse::<u32>)
                .collect::<Result<Vec<u32>, _>>()
            else {
                continue;
            };
            let bin = entry.path().join("bin");
            let complete = ["initdb", "pg_ctl", "postgres", "psql"]
                .iter()
                .all(|b| bin.join(b).is_file());
            if complete && best.as_ref().is_none_or(|(v, _)| version > *v) {
                best = Some((version, bin));
            }
        }
    }
    match best {
        Some((_, bin)) => bin,
        None => panic!(
            "PostgreSQL server binaries not found under /usr/lib/postgresql: run `bash \
             .ci/install-postgres.sh` (as root)"
        ),
    }
}

/// The effective user id of this process, from /proc/self/status.
fn effective_uid() -> u32 {
    let status = fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .and_then(|id| id.parse().ok())
        .expect("effective uid in /proc/self/status")
}

/// uid and gid of the `postgres` OS user (created by Debian's package).
fn postgres_user() -> (u32, u32) {
    let passwd = fs::read_to_string("/etc/passwd").expect("read /etc/passwd");
    passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() > 3 && f[0] == "postgres")
        .and_then(|f| Some((f[2].parse().ok()?, f[3].parse().ok()?)))
        .expect(
            "no `postgres` OS user in /etc/passwd (running as root, the server needs it): run \
             `bash .ci/install-postgres.sh` (as root)",
        )
}

/// A new directory under the temporary directory, unique across processes and threads.
fn unique_dir() -> PathBuf {
    loop {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!(
            "{DIR_PREFIX}{}-{n}-{nanos:08x}",
            std::process::id()
        ));
        // create_dir (not create_dir_all) fails if the name is taken: then try the next one.
        match fs::create_dir(&dir) {
            Ok(()) => return dir,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => panic!("create {}: {e}", dir.display()),
        }
    }
}

/// A loopback port that is free now and was not handed out before in this process.
fn free_port() -> u16 {
    let mut ports = PORTS.lock().unwrap_or_else(|e| e.into_inner());
    let ports = ports.get_or_insert_with(HashSet::new);
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free loopback port");
        if ports.insert(port) {
            return port;
        }
    }
}

/// Clusters left behind by test processes that no longer exist (killed, aborted): stop their
/// servers and remove their directories.
fn reap_stale_clusters(bin: &Path, run_as: Option<(u32, u32)>) {
    let Ok(entries) = fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(DIR_PREFIX)
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if Path::new("/proc").join(pid.to_string()).exists() {
            continue;
        }
        let dir = entry.path();
        let data = dir.join("data");
        let mut cmd = Command::new(bin.join("pg_ctl"));
        cmd.arg("-D")
            .arg(&data)
            .args(["stop", "-m", "immediate", "-w", "-t", "30"])
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        clear_pg_env(&mut cmd);
        if let Some((uid, gid)) = run_as {
            cmd.uid(uid).gid(gid);
        }
        let _ = cmd.status();
        remove_cluster_dir(&dir, &data, run_as);
    }
}

fn remove_cluster_dir(dir: &Path, data: &Path, run_as: Option<(u32, u32)>) {
    if fs::remove_dir_all(dir).is_ok() || !dir.exists() {
        return;
    }
    // Root without CAP_DAC_OVERRIDE cannot enter the 0700 data directory: let its owner empty it.
    if let Some((uid, gid)) = run_as {
        let _ = Command::new("rm")
            .arg("-rf")
            .arg(data)
            .current_dir("/")
            .uid(uid)
            .gid(gid)
            .status();
        let _ = fs::remove_dir_all(dir);
    }
}

fn set_mode(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {:o} {}: {e}", mode, path.display()));
}

/// Single-quote for /bin/sh.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Keep the test environment's libpq and server variables (PGHOST, PGDATA, PGOPTIONS, ...) out.
fn clear_pg_env(cmd: &mut Command) {
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("PG") {
            cmd.env_remove(key);
        }
    }
}

/// Whether something accepts TCP connections on 127.0.0.1:`port`.
pub fn tcp_accepts(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok()
}
