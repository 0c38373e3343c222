//! `maildlp user`: the review console's accounts. Passwords are read from stdin (never from
//! the command line, where `ps` and shell history would keep them).

use super::quarantine::{StoreArgs, actor};
use anyhow::Context as _;
use clap::Subcommand;
use maildlp::quarantine::accounts::Role;
use maildlp::web::auth;
use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum UserCommand {
    /// Create a console account; its password is read from stdin (asked twice on a terminal).
    Add {
        name: String,
        /// reviewer: sees held mail with masked evidence, releases and deletes. admin: also
        /// reads raw messages (audited), the audit log and the dashboard.
        #[arg(long, value_name = "ROLE", default_value = "reviewer")]
        role: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Set a new password (from stdin); unlocks the account and ends its sessions.
    Passwd {
        name: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Disable an account and end its sessions.
    Disable {
        name: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Enable a disabled account again.
    Enable {
        name: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List the accounts.
    List {
        #[command(flatten)]
        store: StoreArgs,
    },
}

fn check_name(name: &str) -> anyhow::Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if !ok {
        anyhow::bail!(
            "{name:?} is not an account name: use up to 64 letters, digits, '.', '_', '-' or '@'"
        );
    }
    Ok(())
}

/// One line from stdin, without echo on a terminal.
fn read_secret(prompt: &str) -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    let tty = stdin.is_terminal();
    let saved = if tty {
        eprint!("{prompt}");
        let _ = std::io::stderr().flush();
        use nix::sys::termios::{LocalFlags, SetArg, tcgetattr, tcsetattr};
        match tcgetattr(&stdin) {
            Ok(t) => {
                let mut quiet = t.clone();
                quiet.local_flags.remove(LocalFlags::ECHO);
                let _ = tcsetattr(&stdin, SetArg::TCSANOW, &quiet);
                Some(t)
            }
            Err(_) => None,
        }
    } else {
        None
    };
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    if let Some(t) = saved {
        let _ = nix::sys::termios::tcsetattr(&stdin, nix::sys::termios::SetArg::TCSANOW, &t);
        eprintln!();
    }
    read.context("reading the password from stdin")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

fn new_password() -> anyhow::Result<String> {
    let pw = read_secret("New password: ")?;
    auth::check_new_password(&pw).map_err(anyhow::Error::msg)?;
    if std::io::stdin().is_terminal() && read_secret("Again: ")? != pw {
        anyhow::bail!("the two passwords differ; nothing was changed");
    }
    auth::hash_password(&pw).map_err(anyhow::Error::msg)
}

pub fn run(cmd: UserCommand) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        match cmd {
            UserCommand::Add { name, role, store } => {
                check_name(&name)?;
                let role: Role = role.parse().map_err(anyhow::Error::msg)?;
                let hash = new_password()?;
                let store = store.open(true).await?;
                store.user_add(&name, role, &hash, &actor()).await?;
                eprintln!("account {name} ({}) created", role.as_str());
            }
            UserCommand::Passwd { name, store } => {
                let store = store.open(false).await?;
                if store.user_get(&name).await?.is_none() {
                    anyhow::bail!("no console account {name:?}: `maildlp user list` shows them");
                }
                let hash = new_password()?;
                store.user_set_password(&name, &hash, &actor()).await?;
                eprintln!("password of {name} changed; its sessions ended");
            }
            UserCommand::Disable { name, store } => {
                let store = store.open(false).await?;
                store.user_set_disabled(&name, true, &actor()).await?;
                eprintln!("account {name} disabled; its sessions ended");
            }
            UserCommand::Enable { name, store } => {
                let store = store.open(false).await?;
                store.user_set_disabled(&name, false, &actor()).await?;
                eprintln!("account {name} enabled");
            }
            UserCommand::List { store } => {
                let store = store.open(false).await?;
                let now = maildlp::quarantine::store::now_ms();
                for u in store.user_list().await? {
                    let state = if u.disabled {
                        "disabled".to_string()
                    } else if u.locked_until_ms > now {
                        format!(
                            "locked until {}",
                            maildlp::quarantine::format_ms(u.locked_until_ms)
                        )
                    } else {
                        "active".to_string()
                    };
                    println!("{}\t{}\t{state}", u.name, u.role.as_str());
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}
