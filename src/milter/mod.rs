//! The milter server: Postfix and Sendmail hand every message to maildlp over the milter
//! protocol. Three layers, each testable alone: [`codec`] (bytes ⇄ commands), [`session`]
//! (one connection's protocol state), [`server`] (listener, limits, shutdown). The engine is
//! reached only through the [`Handler`] trait: this module knows nothing of scanning or policy.

pub mod client;
pub mod codec;
pub mod server;
pub mod session;

use std::collections::HashMap;

/// The SMTP envelope and connection facts of one message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Envelope {
    pub client_addr: Option<String>,
    pub helo: Option<String>,
    /// MAIL FROM address, without angle brackets (empty for the null sender).
    pub mail_from: String,
    /// RCPT TO addresses, without angle brackets.
    pub rcpt_to: Vec<String>,
    pub macros: HashMap<String, String>,
    /// The MTA's queue id (macro `i`), for log lines.
    pub queue_id: Option<String>,
    /// Recipients past the per-message cap, not kept: the message cannot be judged on its
    /// recipients (a lost one could make outbound mail look internal), so it is tempfailed.
    pub recipients_over_limit: usize,
}

/// What the MTA does with the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Accept,
    Reject {
        code: String,
        xcode: String,
        text: String,
    },
    TempFail {
        code: String,
        xcode: String,
        text: String,
    },
    /// Accept into the MTA's hold queue (Postfix) / quarantine (Sendmail).
    Quarantine {
        reason: String,
    },
    Discard,
}

/// The handler's answer for one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub action: Action,
    /// Headers added when the message goes on (accepted or quarantined).
    pub add_headers: Vec<(String, String)>,
}

impl Decision {
    pub fn accept() -> Self {
        Decision {
            action: Action::Accept,
            add_headers: Vec::new(),
        }
    }

    pub fn tempfail(text: &str) -> Self {
        Decision {
            action: Action::TempFail {
                code: "451".into(),
                xcode: "4.7.1".into(),
                text: text.into(),
            },
            add_headers: Vec::new(),
        }
    }
}

impl Decision {
    /// The headers to add, as the MTA will write them: printable ASCII, the name without
    /// spaces, both bounded. The milter sends these as add-header packets; the relay writes
    /// them at the top of the message it forwards.
    pub fn header_fields(&self) -> impl Iterator<Item = (String, String)> + '_ {
        self.add_headers.iter().map(|(n, v)| {
            (
                codec::sanitize(n, 100).replace(' ', "-"),
                codec::sanitize(v, 900),
            )
        })
    }
}

/// Judges a complete message. Called off the async runtime; may take a few milliseconds.
pub trait Handler: Send + Sync + 'static {
    /// `message` is the whole RFC 5322 message: the headers as received, a blank line, the body.
    fn judge(&self, envelope: &Envelope, message: &[u8]) -> Decision;

    /// The decision for a message over the size limit (it was not buffered whole).
    fn oversize(&self, _envelope: &Envelope, limit: usize) -> Decision {
        Decision::tempfail(&format!(
            "message larger than the {limit}-byte scanning limit; it cannot be checked"
        ))
    }
}

/// Where the milter listens, in Postfix's notation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen {
    /// `inet:HOST:PORT`
    Inet(String),
    /// `unix:/path/to/socket`
    Unix(std::path::PathBuf),
}

impl std::str::FromStr for Listen {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if let Some(rest) = s.strip_prefix("inet:") {
            let (host, port) = rest.rsplit_once(':').ok_or_else(|| {
                format!("{s:?}: write inet:HOST:PORT, for example inet:127.0.0.1:8890")
            })?;
            port.parse::<u16>()
                .map_err(|_| format!("{s:?}: {port:?} is not a port number (1-65535)"))?;
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let host = if host.is_empty() { "127.0.0.1" } else { host };
            let addr = if host.contains(':') {
                format!("[{host}]:{port}")
            } else {
                format!("{host}:{port}")
            };
            Ok(Listen::Inet(addr))
        } else if let Some(path) = s.strip_prefix("unix:") {
            if path.is_empty() {
                return Err(format!("{s:?}: write unix:/path/to/socket"));
            }
            Ok(Listen::Unix(path.into()))
        } else {
            Err(format!(
                "{s:?}: use inet:HOST:PORT (e.g. inet:127.0.0.1:8890) or unix:/path/to/socket"
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Listen;

    #[test]
    fn listen_specs() {
        assert_eq!(
            "inet:127.0.0.1:8890".parse::<Listen>(),
            Ok(Listen::Inet("127.0.0.1:8890".into()))
        );
        assert_eq!(
            "inet:[::1]:8890".parse::<Listen>(),
            Ok(Listen::Inet("[::1]:8890".into()))
        );
        assert_eq!(
            "unix:/run/maildlp.sock".parse::<Listen>(),
            Ok(Listen::Unix("/run/maildlp.sock".into()))
        );
        assert!("127.0.0.1:8890".parse::<Listen>().is_err());
        assert!("inet:localhost:http".parse::<Listen>().is_err());
    }
}
