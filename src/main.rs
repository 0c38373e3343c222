//! The `maildlp` command line: a thin front end over the library.

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand, ValueEnum};
use maildlp::detect::Detector;
use maildlp::limits::Limits;
use maildlp::mailbox::Messages;
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

#[derive(Args)]
struct ScanArgs {
    /// Files, directories, mailboxes, or - for standard input.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Output format (default: json when not writing to a terminal, text otherwise).
    #[arg(long, value_enum)]
    format: Option<Format>,
    #[command(flatten)]
    engine: EngineArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Scan(args) => scan(args),
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
    let format = args.format.unwrap_or(if std::io::stdout().is_terminal() {
        Format::Text
    } else {
        Format::Json
    });
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut failed = 0usize;
    for item in Messages::new(&args.paths, args.engine.max_message_bytes) {
        let item = match item {
            Ok(item) => item,
            Err(e) => {
                eprintln!("maildlp: error: {e}");
                failed += 1;
                continue;
            }
        };
        let report = scanner.scan(&item.raw);
        match format {
            Format::Json => {
                serde_json::to_writer(&mut out, &Record::new(&item, &report))?;
                out.write_all(b"\n")?;
            }
            Format::Text => out.write_all(text_block(&item, &report).as_bytes())?,
        }
    }
    out.flush()?;
    Ok(if failed > 0 {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}
