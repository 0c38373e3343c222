//! Release: a held message goes to the next hop over SMTP (lettre) with its original envelope,
//! unchanged but for one header naming the reviewer and the quarantine id. The next hop is a
//! listener that does not call the milter again (the README shows Postfix's master.cf entry).
//! A failed delivery leaves the message held and says why.

use super::{Status, Store, StoreError};
use lettre::address::Envelope;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use std::time::Duration;

/// Where released mail (and notices) go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextHop {
    pub host: String,
    pub port: u16,
    pub timeout: Duration,
}

impl std::str::FromStr for NextHop {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (host, port) = s
            .rsplit_once(':')
            .ok_or_else(|| format!("{s:?}: write HOST:PORT, for example 127.0.0.1:10026"))?;
        let port = port
            .parse::<u16>()
            .map_err(|_| format!("{s:?}: {port:?} is not a port number"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(format!("{s:?}: the host is missing"));
        }
        Ok(NextHop {
            host: host.to_string(),
            port,
            timeout: Duration::from_secs(60),
        })
    }
}

impl std::fmt::Display for NextHop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Address(String),
    #[error("delivery to {hop} failed: {why}; the message stays held")]
    Delivery { hop: String, why: String },
}

/// Send `message` from `sender` to `recipients` through `hop`, as it is.
pub async fn deliver(
    hop: &NextHop,
    sender: &str,
    recipients: &[String],
    message: &[u8],
) -> Result<(), ReleaseError> {
    let from = if sender.is_empty() {
        None
    } else {
        Some(sender.parse().map_err(|e| {
            ReleaseError::Address(format!(
                "the sender {sender:?} is not an address lettre accepts: {e}"
            ))
        })?)
    };
    let to = recipients
        .iter()
        .map(|r| {
            r.parse().map_err(|e| {
                ReleaseError::Address(format!(
                    "the recipient {r:?} is not an address lettre accepts: {e}"
                ))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let envelope = Envelope::new(from, to)
        .map_err(|e| ReleaseError::Address(format!("no usable envelope: {e}")))?;
    // lettre ends the data with CRLF "." CRLF after the bytes it is given: a message that
    // already ends with CRLF would gain an empty line, so that CRLF is left to lettre.
    let message = message.strip_suffix(b"\r\n").unwrap_or(message);
    let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&hop.host)
        .port(hop.port)
        .timeout(Some(hop.timeout))
        .build();
    transport
        .send_raw(&envelope, message)
        .await
        .map(|_| ())
        .map_err(|e| ReleaseError::Delivery {
            hop: hop.to_string(),
            why: e.to_string(),
        })
}

/// Release held message `id`: deliver it, then record it released (with `actor` and
/// `reason` in the audit log). Returns the full id.
pub async fn release(
    store: &Store,
    hop: &NextHop,
    id: &str,
    actor: &str,
    reason: &str,
) -> Result<String, ReleaseError> {
    let held = store.get(id).await?;
    let id = held.summary.id.clone();
    if held.summary.status != Status::Held {
        return Err(StoreError::NotHeld {
            id,
            status: held.summary.status.as_str().into(),
        }
        .into());
    }
    let original = store.content(&id).await?;
    let mut message = format!(
        "X-Maildlp-Released: id={id}; by={}; at={}\r\n",
        header_safe(actor),
        super::format_ms(super::store::now_ms())
    )
    .into_bytes();
    message.extend_from_slice(&original);
    if let Err(e) = deliver(
        hop,
        &held.summary.sender,
        &held.summary.recipients,
        &message,
    )
    .await
    {
        store
            .append_audit(
                actor,
                "release_failed",
                Some(&id),
                &format!("{reason} ({e})"),
            )
            .await?;
        return Err(e);
    }
    store
        .transition(&id, Status::Released, true, actor, "release", reason)
        .await?;
    Ok(id)
}

fn header_safe(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() || c == ';' { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::NextHop;

    #[test]
    fn next_hop_specs() {
        let h: NextHop = "127.0.0.1:10026".parse().expect("hop");
        assert_eq!((h.host.as_str(), h.port), ("127.0.0.1", 10026));
        let h: NextHop = "[::1]:25".parse().expect("hop");
        assert_eq!(h.host, "::1");
        assert!("127.0.0.1".parse::<NextHop>().is_err());
        assert!(":25".parse::<NextHop>().is_err());
        assert!("h:smtp".parse::<NextHop>().is_err());
    }
}
