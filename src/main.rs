//! The `maildlp` command line: a thin front end over the library.

mod cli;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand, ValueEnum};
use maildlp::detect::Detector;
use maildlp::limits::Limits;
use maildlp::policy::{self, Envelope, Policy};
use maildlp::replay::{Checker, Expectations, Summary};
use maildlp::report::{Record, text_block};
use maildlp::scan::Scanner;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "maildlp",
    version,
    about = "Outbound e-mail data-loss-prevention filter"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Scan messages (.eml files, mbox files, Maildir folders, directories, or - for stdin) and
    /// print what sensitive information each holds.
    Scan(ScanArgs),
    /// Run stored mail (mbox, Maildir, .eml) through scan and policy and summarise the verdicts;
    /// with --expect, compare them with expected ones and exit 1 on any mismatch.
    Replay(ReplayArgs),
    /// Check or print a policy file.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Run the milter server that Postfix or Sendmail calls for every message, with the
    /// quarantine store and the notice worker.
    Milter(cli::serve::MilterArgs),
    /// Run the main job with embedded defaults: the milter on inet:127.0.0.1:8890, the
    /// quarantine in ./maildlp-data and the review console on http://127.0.0.1:8025.
    Serve(cli::serve::MilterArgs),
    /// Run an SMTP relay that scans every message, then forwards it to the next hop, stores
    /// it in the quarantine or refuses it (Postfix content_filter, smart host).
    Relay(cli::relay::RelayArgs),
    /// Review the quarantine: list, show, release, delete, purge, audit.
    #[command(subcommand)]
    Quarantine(cli::quarantine::QuarantineCommand),
    /// Make a new quarantine key file.
    Keygen(cli::quarantine::KeygenArgs),
    /// Accounts of the review console: add, passwd, disable, enable, list.
    #[command(subcommand)]
    User(cli::user::UserCommand),
    /// Load generator: play concurrent milter sessions against a running milter and report
    /// messages/s and latency percentiles.
    MilterLoad(LoadArgs),
}

#[derive(Args)]
struct LoadArgs {
    /// The milter's TCP address (HOST:PORT).
    #[arg(long, default_value = "127.0.0.1:8890")]
    addr: std::net::SocketAddr,
    #[arg(long, default_value_t = 8)]
    connections: usize,
    #[arg(long, default_value_t = 1000)]
    messages_per_connection: usize,
    /// Message to send (default: a synthetic ~20 KB plain-text message). Repeat it, or give a
    /// directory, to play several messages in turn (a mixed load).
    #[arg(long, value_name = "FILE|DIR")]
    message: Vec<PathBuf>,
    /// Make the synthetic message one the embedded policy quarantines (a labelled, synthetic
    /// SSN to an outside recipient): measures the quarantine path, store included.
    #[arg(long, conflicts_with = "message")]
    sensitive: bool,
    /// Behave like Postfix's side of the socket (Nagle's algorithm on, one write per command),
    /// so that a filter's delayed ACKs show as they do inside a real Postfix.
    #[arg(long)]
    like_postfix: bool,
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Validate a policy file (exit 0 when valid, 2 with the problem's line otherwise).
    Check {
        file: PathBuf,
        /// Pattern directories whose kinds the policy may name.
        #[arg(long = "patterns", value_name = "DIR")]
        patterns: Vec<PathBuf>,
    },
    /// Print the effective policy (the embedded default, or --policy FILE) as TOML.
    Show {
        #[arg(long, value_name = "FILE")]
        policy: Option<PathBuf>,
        #[arg(long = "patterns", value_name = "DIR")]
        patterns: Vec<PathBuf>,
    },
}

#[derive(Args)]
struct ReplayArgs {
    /// Files, directories, mailboxes, or - for standard input.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Policy file (default: the embedded policy).
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Expected verdicts (TOML: [[message]] file, index, action, rules).
    #[arg(long, value_name = "FILE")]
    expect: Option<PathBuf>,
    /// Judge as of this day (YYYY-MM-DD): exceptions that had expired by then do nothing,
    /// ones still valid then apply (default: today, UTC).
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = parse_date)]
    date: Option<(u16, u8, u8)>,
    /// Print each message's chain_letter and mass_solicitation score (the phrases and their
    /// points), to tune thresholds and phrases.
    #[arg(long)]
    scores: bool,
    /// Messages scanned at once (default: one per core). Results are taken in input order.
    #[arg(long, short = 'j', value_name = "N")]
    jobs: Option<usize>,
    #[command(flatten)]
    engine: EngineArgs,
}

/// `2026-11-30` → (2026, 11, 30), a real calendar day.
fn parse_date(s: &str) -> Result<(u16, u8, u8), String> {
    let bad = || format!("{s:?} is not a date: write YYYY-MM-DD, such as 2026-11-30");
    let mut it = s.trim().splitn(3, '-');
    let (Some(y), Some(m), Some(d)) = (it.next(), it.next(), it.next()) else {
        return Err(bad());
    };
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return Err(bad());
    }
    let y: u16 = y.parse().map_err(|_| bad())?;
    let m: u8 = m.parse().map_err(|_| bad())?;
    let d: u8 = d.parse().map_err(|_| bad())?;
    let leap = (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400);
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return Err(bad()),
    };
    if d == 0 || d > days {
        return Err(bad());
    }
    Ok((y, m, d))
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Json,
    Text,
}

#[derive(Args)]
struct EngineArgs {
    /// Extra pattern directory (every *.toml in it is loaded after the built-in patterns).
    #[arg(long = "patterns", value_name = "DIR")]
    patterns: Vec<PathBuf>,
    /// Container nesting depth below the message.
    #[arg(long, value_name = "N")]
    max_depth: Option<usize>,
    /// Decoded bytes per message.
    #[arg(long, value_name = "BYTES")]
    max_decoded_bytes: Option<usize>,
    /// Decoded bytes per part or archive entry.
    #[arg(long, value_name = "BYTES")]
    max_part_bytes: Option<usize>,
    /// Entries read from one archive.
    #[arg(long, value_name = "N")]
    max_archive_entries: Option<usize>,
    /// Largest uncompressed/compressed ratio of an archive entry.
    #[arg(long, value_name = "RATIO")]
    max_expansion_ratio: Option<u64>,
    /// Time per message, in milliseconds.
    #[arg(long, value_name = "MS")]
    max_scan_millis: Option<u64>,
    /// Raw size of one message read from a file or mailbox.
    #[arg(long, value_name = "BYTES", default_value_t = 100 * 1024 * 1024)]
    max_message_bytes: usize,
}

impl EngineArgs {
    fn limits(&self) -> Limits {
        let mut l = Limits::default();
        if let Some(v) = self.max_depth {
            l.max_depth = v;
        }
        if let Some(v) = self.max_decoded_bytes {
            l.max_decoded_bytes = v;
        }
        if let Some(v) = self.max_part_bytes {
            l.max_part_bytes = v;
        }
        if let Some(v) = self.max_archive_entries {
            l.max_archive_entries = v;
        }
        if let Some(v) = self.max_expansion_ratio {
            l.max_expansion_ratio = v;
        }
        if let Some(v) = self.max_scan_millis {
            l.max_scan_millis = v;
        }
        l
    }

    fn scanner(&self) -> anyhow::Result<Scanner> {
        let detector = Detector::new(&self.patterns).context("loading patterns")?;
        Ok(Scanner::new(detector, self.limits()))
    }
}

/// The kinds a detector reports: what a policy may name.
fn detector_kinds(detector: &Detector) -> Vec<String> {
    let mut kinds: Vec<String> = detector.patterns().map(|(_, k)| k.to_string()).collect();
    kinds.sort();
    kinds.dedup();
    kinds
}

/// The policy in force: `path`, or the embedded default.
fn load_policy(path: Option<&std::path::Path>, detector: &Detector) -> anyhow::Result<Policy> {
    let kinds = detector_kinds(detector);
    Ok(match path {
        Some(p) => Policy::load(p, &kinds)
            .context("loading the policy (check it with `maildlp policy check FILE`)")?,
        None => Policy::default_policy().context("loading the embedded policy")?,
    })
}

fn policy_check(file: &std::path::Path, patterns: &[PathBuf]) -> anyhow::Result<ExitCode> {
    let detector = Detector::new(patterns).context("loading patterns")?;
    match Policy::load(file, &detector_kinds(&detector)) {
        Ok(_) => {
            println!("{}: valid", file.display());
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("maildlp: invalid policy: {e}");
            Ok(ExitCode::from(2))
        }
    }
}

fn policy_show(file: Option<&std::path::Path>, patterns: &[PathBuf]) -> anyhow::Result<ExitCode> {
    match file {
        // The embedded default is printed as written, with its comments.
        None => print!("{}", maildlp::policy::config::DEFAULT_POLICY),
        Some(_) => {
            let detector = Detector::new(patterns).context("loading patterns")?;
            print!("{}", load_policy(file, &detector)?.to_toml());
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn replay(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    let scanner = args.engine.scanner()?;
    let policy = load_policy(args.policy.as_deref(), scanner.detector())?;
    let mut checker = match &args.expect {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading the expectation file {}", path.display()))?;
            let exp: Expectations = toml::from_str(&text)
                .with_context(|| format!("{}: not a valid expectation file", path.display()))?;
            Some(Checker::new(exp))
        }
        None => None,
    };
    let started = std::time::Instant::now();
    let day = args.date.unwrap_or_else(policy::today);
    if let Some((y, m, d)) = args.date {
        println!("judged as of {y:04}-{m:02}-{d:02}");
    }
    let mut summary = Summary::default();
    let jobs = cli::inputs::jobs(args.jobs);
    cli::inputs::for_each_scanned(
        &args.paths,
        args.engine.max_message_bytes,
        jobs,
        &scanner,
        |scanned| {
            let (item, report) = match scanned {
                Ok(done) => done,
                Err(e) => {
                    eprintln!("maildlp: error: {e}");
                    summary.input_errors += 1;
                    return Ok(());
                }
            };
            let verdict =
                policy::evaluate_on(&policy, &report, &Envelope::from_headers(&report), day);
            summary.add(&item, &report, &verdict);
            summary.add_content(&report, &policy);
            if args.scores {
                let label = match item.index {
                    Some(i) => format!("{}#{i}", item.path),
                    None => item.path.clone(),
                };
                print!("{}", maildlp::replay::score_lines(&label, &report, &policy));
            }
            if let Some(c) = checker.as_mut() {
                c.check(&item, &verdict);
            }
            Ok(())
        },
    )?;
    print!("{}", summary.render(started.elapsed()));
    if let Some(mut c) = checker {
        c.finish();
        if !c.mismatches.is_empty() {
            println!("{} mismatches:", c.mismatches.len());
            for m in &c.mismatches {
                println!("  {m}");
            }
            return Ok(ExitCode::from(1));
        }
        println!("all verdicts as expected");
    }
    Ok(if summary.input_errors > 0 {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

#[derive(Args)]
struct ScanArgs {
    /// Files, directories, mailboxes, or - for standard input.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Output format (default: json when not writing to a terminal, text otherwise).
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// Policy file (default: the embedded policy).
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Envelope sender (default: the From header).
    #[arg(long, value_name = "ADDR")]
    from: Option<String>,
    /// Envelope recipient, repeatable (default: To, Cc and Bcc headers).
    #[arg(long = "rcpt", value_name = "ADDR")]
    rcpt: Vec<String>,
    /// Messages scanned at once (default: one per core). Output stays in input order.
    #[arg(long, short = 'j', value_name = "N")]
    jobs: Option<usize>,
    #[command(flatten)]
    engine: EngineArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Scan(args) => scan(args),
        Command::Replay(args) => replay(args),
        Command::Policy(PolicyCommand::Check { file, patterns }) => policy_check(&file, &patterns),
        Command::Policy(PolicyCommand::Show { policy, patterns }) => {
            policy_show(policy.as_deref(), &patterns)
        }
        Command::Milter(args) => cli::serve::milter(args, false),
        Command::Serve(args) => cli::serve::milter(args, true),
        Command::Relay(args) => cli::relay::relay(args),
        Command::User(cmd) => cli::user::run(cmd),
        Command::Quarantine(cmd) => cli::quarantine::run(cmd),
        Command::Keygen(args) => cli::quarantine::keygen(args),
        Command::MilterLoad(args) => milter_load(args),
    };
    match result {
        Ok(code) => code,
        // `maildlp scan ... | head` closing the pipe is not an error worth a message.
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("maildlp: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Log lines on stderr; `RUST_LOG` (e.g. `maildlp=debug`) sets the level, info by default.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
}

/// A synthetic plain-text message of about 20 KB, like ordinary correspondence.
fn synthetic_message() -> Vec<u8> {
    let mut m = b"From: Pat Clerk <pat@city.test>\r\nTo: Sam Vendor <sam@example.com>\r\nSubject: Quarterly maintenance schedule\r\nMessage-ID: <load@city.test>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n".to_vec();
    let para = "The parks department will resurface the north lot on 2026-12-03 between 07:00 and 15:00. \
Call 940-555-0142 with questions; order 112-4839201 covers the materials. Crews from districts 4 and 7 \
will rotate, and the public works portal lists closures by ZIP 76201-4229.\r\n";
    while m.len() < 20_000 {
        m.extend_from_slice(para.as_bytes());
    }
    m
}

fn milter_load(args: LoadArgs) -> anyhow::Result<ExitCode> {
    let mut messages: Vec<Vec<u8>> = Vec::new();
    for p in &args.message {
        if p.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(p)
                .with_context(|| format!("reading the directory {}", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.is_file())
                .collect();
            files.sort();
            for f in files {
                messages
                    .push(std::fs::read(&f).with_context(|| format!("reading {}", f.display()))?);
            }
        } else {
            messages.push(std::fs::read(p).with_context(|| format!("reading {}", p.display()))?);
        }
    }
    if messages.is_empty() {
        if !args.message.is_empty() {
            anyhow::bail!("--message: no files found in {:?}", args.message);
        }
        let mut m = synthetic_message();
        if args.sensitive {
            m.extend_from_slice(b"Employee SSN: 536-22-4817 (synthetic, for load tests)\r\n");
        }
        messages.push(m);
    }
    let bytes: usize = messages.iter().map(Vec::len).sum();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let report = runtime.block_on(maildlp::milter::client::run_load(
        args.addr,
        args.connections,
        args.messages_per_connection,
        &messages,
        args.like_postfix,
    ));
    println!(
        "{} messages ({} bytes {}) over {} connections in {:.2} s: {:.0} messages/s; latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; {} errors",
        report.messages,
        bytes / messages.len(),
        if messages.len() == 1 {
            "each"
        } else {
            "on average"
        },
        args.connections,
        report.elapsed.as_secs_f64(),
        report.per_second(),
        report.p50.as_secs_f64() * 1000.0,
        report.p99.as_secs_f64() * 1000.0,
        report.max.as_secs_f64() * 1000.0,
        report.errors
    );
    Ok(if report.errors > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .map(|io| io.kind())
            .or_else(|| {
                cause
                    .downcast_ref::<serde_json::Error>()
                    .and_then(|j| j.io_error_kind())
            })
            == Some(std::io::ErrorKind::BrokenPipe)
    })
}

fn scan(args: ScanArgs) -> anyhow::Result<ExitCode> {
    let scanner = args.engine.scanner()?;
    let policy = load_policy(args.policy.as_deref(), scanner.detector())?;
    let format = args.format.unwrap_or(if std::io::stdout().is_terminal() {
        Format::Text
    } else {
        Format::Json
    });
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut failed = 0usize;
    let jobs = cli::inputs::jobs(args.jobs);
    cli::inputs::for_each_scanned(
        &args.paths,
        args.engine.max_message_bytes,
        jobs,
        &scanner,
        |scanned| {
            let (item, report) = match scanned {
                Ok(done) => done,
                Err(e) => {
                    eprintln!("maildlp: error: {e}");
                    failed += 1;
                    return Ok(());
                }
            };
            let mut envelope = Envelope::from_headers(&report);
            if let Some(from) = &args.from {
                envelope.sender = Some(from.clone());
            }
            if !args.rcpt.is_empty() {
                envelope.recipients = args.rcpt.clone();
            }
            let verdict = policy::evaluate(&policy, &report, &envelope);
            match format {
                Format::Json => {
                    serde_json::to_writer(&mut out, &Record::new(&item, &report, Some(&verdict)))?;
                    out.write_all(b"\n")?;
                }
                Format::Text => {
                    out.write_all(text_block(&item, &report, Some(&verdict)).as_bytes())?
                }
            }
            Ok(())
        },
    )?;
    out.flush()?;
    Ok(if failed > 0 {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}
