//! The Sendmail milter protocol (version 6) on the wire: frames ⇄ commands and responses.
//! No policy and no engine here. Written for this project because the one Rust milter library
//! is GPL-3.0 and maildlp is MIT OR Apache-2.0.
//!
//! A frame is a 4-byte big-endian length (command byte included), the command byte, and data.

use std::fmt;

/// Largest frame accepted. Postfix and Sendmail send body chunks of at most 64 KiB; anything
/// much larger is garbage or an attack, and the connection is closed.
pub const MAX_FRAME: usize = 1024 * 1024;

pub const VERSION: u32 = 6;

// Actions the filter may take (SMFIF_*).
pub const SMFIF_ADDHDRS: u32 = 0x01;
pub const SMFIF_CHGHDRS: u32 = 0x10;
pub const SMFIF_QUARANTINE: u32 = 0x20;

// Protocol steps (SMFIP_*): what the MTA may leave out or not wait a reply for.
pub const SMFIP_NOCONNECT: u32 = 0x01;
pub const SMFIP_NOHELO: u32 = 0x02;
pub const SMFIP_NOUNKNOWN: u32 = 0x100;
pub const SMFIP_NODATA: u32 = 0x200;
pub const SMFIP_NR_HDR: u32 = 0x80;
pub const SMFIP_NR_CONN: u32 = 0x1000;
pub const SMFIP_NR_HELO: u32 = 0x2000;
pub const SMFIP_NR_MAIL: u32 = 0x4000;
pub const SMFIP_NR_RCPT: u32 = 0x8000;
pub const SMFIP_NR_DATA: u32 = 0x10000;
pub const SMFIP_NR_UNKN: u32 = 0x20000;
pub const SMFIP_NR_EOH: u32 = 0x40000;
pub const SMFIP_NR_BODY: u32 = 0x80000;

/// A command from the MTA, borrowing from the frame (bodies are not copied).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command<'a> {
    OptNeg {
        version: u32,
        actions: u32,
        protocol: u32,
    },
    /// Macros for the step named by `for_command`.
    Macro {
        for_command: u8,
        pairs: Vec<(&'a str, &'a str)>,
    },
    Connect {
        hostname: &'a str,
        address: Option<String>,
    },
    Helo(&'a str),
    /// MAIL FROM: the address (with its angle brackets, as the MTA sends it) and ESMTP args.
    Mail(Vec<&'a str>),
    Rcpt(Vec<&'a str>),
    Data,
    Header {
        name: &'a str,
        value: &'a str,
    },
    EndOfHeaders,
    Body(&'a [u8]),
    EndOfBody,
    Abort,
    Quit,
    QuitNewConnection,
    Unknown(&'a [u8]),
}

/// Why a frame could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("frame length {0} is out of range (1..={MAX_FRAME})")]
    BadLength(usize),
    #[error("unknown command byte 0x{0:02x}")]
    UnknownCommand(u8),
    #[error("command '{0}' is truncated or malformed")]
    Malformed(char),
}

/// Commands print without content: a log line never carries message text.
impl fmt::Display for Command<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::OptNeg {
                version,
                actions,
                protocol,
            } => write!(
                f,
                "OPTNEG v{version} actions=0x{actions:x} protocol=0x{protocol:x}"
            ),
            Command::Macro { for_command, pairs } => {
                write!(
                    f,
                    "MACRO '{}' [{} macros]",
                    *for_command as char,
                    pairs.len()
                )
            }
            Command::Connect { .. } => f.write_str("CONNECT"),
            Command::Helo(_) => f.write_str("HELO"),
            Command::Mail(_) => f.write_str("MAIL"),
            Command::Rcpt(_) => f.write_str("RCPT"),
            Command::Data => f.write_str("DATA"),
            Command::Header { .. } => f.write_str("HEADER"),
            Command::EndOfHeaders => f.write_str("EOH"),
            Command::Body(b) => write!(f, "BODY [{} bytes]", b.len()),
            Command::EndOfBody => f.write_str("EOB"),
            Command::Abort => f.write_str("ABORT"),
            Command::Quit => f.write_str("QUIT"),
            Command::QuitNewConnection => f.write_str("QUIT_NC"),
            Command::Unknown(b) => write!(f, "UNKNOWN [{} bytes]", b.len()),
        }
    }
}

/// Validate a frame length read from the wire.
pub fn check_length(len: u32) -> Result<usize, CodecError> {
    let len = len as usize;
    if len == 0 || len > MAX_FRAME {
        return Err(CodecError::BadLength(len));
    }
    Ok(len)
}

/// NUL-terminated strings of `data` (a missing final NUL is tolerated for the last one).
fn strings(data: &[u8]) -> Vec<&str> {
    let data = data.strip_suffix(&[0]).unwrap_or(data);
    if data.is_empty() {
        return Vec::new();
    }
    data.split(|&b| b == 0)
        .map(|s| std::str::from_utf8(s).unwrap_or(""))
        .collect()
}

fn be32(data: &[u8], at: usize) -> Option<u32> {
    data.get(at..at + 4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// Decode one frame's payload (command byte + data).
pub fn decode(frame: &[u8]) -> Result<Command<'_>, CodecError> {
    let (&cmd, data) = frame.split_first().ok_or(CodecError::BadLength(0))?;
    let malformed = || CodecError::Malformed(cmd as char);
    Ok(match cmd {
        b'O' => Command::OptNeg {
            version: be32(data, 0).ok_or_else(malformed)?,
            actions: be32(data, 4).ok_or_else(malformed)?,
            protocol: be32(data, 8).ok_or_else(malformed)?,
        },
        b'D' => {
            let (&for_command, rest) = data.split_first().ok_or_else(malformed)?;
            let list = strings(rest);
            let pairs = list
                .chunks(2)
                .filter(|c| c.len() == 2)
                .map(|c| (c[0], c[1]))
                .collect();
            Command::Macro { for_command, pairs }
        }
        b'C' => {
            let nul = data.iter().position(|&b| b == 0).ok_or_else(malformed)?;
            let hostname = std::str::from_utf8(&data[..nul]).unwrap_or("");
            let rest = &data[nul + 1..];
            let address = match rest.first() {
                Some(b'4') | Some(b'6') => rest
                    .get(3..)
                    .and_then(|a| strings(a).first().map(|s| s.to_string())),
                Some(b'L') => rest
                    .get(1..)
                    .and_then(|a| strings(a).first().map(|s| format!("unix:{s}"))),
                _ => None,
            };
            Command::Connect { hostname, address }
        }
        b'H' => Command::Helo(strings(data).first().copied().unwrap_or("")),
        b'M' => Command::Mail(strings(data)),
        b'R' => Command::Rcpt(strings(data)),
        b'T' => Command::Data,
        b'L' => {
            let list = strings(data);
            match list.as_slice() {
                [name, value, ..] => Command::Header { name, value },
                [name] => Command::Header { name, value: "" },
                _ => return Err(malformed()),
            }
        }
        b'N' => Command::EndOfHeaders,
        b'B' => Command::Body(data),
        b'E' => Command::EndOfBody,
        b'A' => Command::Abort,
        b'Q' => Command::Quit,
        b'K' => Command::QuitNewConnection,
        b'U' => Command::Unknown(data),
        other => return Err(CodecError::UnknownCommand(other)),
    })
}

/// A response to the MTA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    OptNeg {
        version: u32,
        actions: u32,
        protocol: u32,
    },
    Continue,
    Accept,
    Reject,
    TempFail,
    Discard,
    /// `550 5.7.1 text`: rejects (5xx) or tempfails (4xx) with this reply.
    ReplyCode(String),
    AddHeader {
        name: String,
        value: String,
    },
    Quarantine(String),
}

impl Response {
    /// Append the encoded frame to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut payload: Vec<u8> = Vec::new();
        let cmd = match self {
            Response::OptNeg {
                version,
                actions,
                protocol,
            } => {
                payload.extend_from_slice(&version.to_be_bytes());
                payload.extend_from_slice(&actions.to_be_bytes());
                payload.extend_from_slice(&protocol.to_be_bytes());
                b'O'
            }
            Response::Continue => b'c',
            Response::Accept => b'a',
            Response::Reject => b'r',
            Response::TempFail => b't',
            Response::Discard => b'd',
            Response::ReplyCode(text) => {
                payload.extend_from_slice(text.as_bytes());
                payload.push(0);
                b'y'
            }
            Response::AddHeader { name, value } => {
                payload.extend_from_slice(name.as_bytes());
                payload.push(0);
                payload.extend_from_slice(value.as_bytes());
                payload.push(0);
                b'h'
            }
            Response::Quarantine(reason) => {
                payload.extend_from_slice(reason.as_bytes());
                payload.push(0);
                b'q'
            }
        };
        out.extend_from_slice(&((payload.len() + 1) as u32).to_be_bytes());
        out.push(cmd);
        out.extend_from_slice(&payload);
    }
}

/// Text made safe for an SMTP reply or a header: printable ASCII, no CR/LF, no `%` (which
/// Sendmail expands), at most `max` bytes.
pub fn sanitize(text: &str, max: usize) -> String {
    let mut out: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '%' || c == ' ' {
                c
            } else {
                ' '
            }
        })
        .collect();
    if out.len() > max {
        out.truncate(max.saturating_sub(3));
        out.push_str("...");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(cmd: u8, data: &[u8]) -> Vec<u8> {
        let mut f = vec![cmd];
        f.extend_from_slice(data);
        f
    }

    #[test]
    fn decodes_every_command() {
        let mut o = Vec::new();
        for v in [6u32, 0x1ff, 0x1fffff] {
            o.extend_from_slice(&v.to_be_bytes());
        }
        assert_eq!(
            decode(&frame(b'O', &o)),
            Ok(Command::OptNeg {
                version: 6,
                actions: 0x1ff,
                protocol: 0x1fffff
            })
        );
        assert_eq!(
            decode(&frame(b'D', b"Mi\0ABC123\0{auth_authen}\0pat\0")),
            Ok(Command::Macro {
                for_command: b'M',
                pairs: vec![("i", "ABC123"), ("{auth_authen}", "pat")]
            })
        );
        let mut c = b"mail.city.test\0".to_vec();
        c.push(b'4');
        c.extend_from_slice(&25u16.to_be_bytes());
        c.extend_from_slice(b"192.0.2.1\0");
        assert_eq!(
            decode(&frame(b'C', &c)),
            Ok(Command::Connect {
                hostname: "mail.city.test",
                address: Some("192.0.2.1".into())
            })
        );
        assert_eq!(
            decode(&frame(b'H', b"client\0")),
            Ok(Command::Helo("client"))
        );
        assert_eq!(
            decode(&frame(b'M', b"<pat@city.test>\0SIZE=100\0")),
            Ok(Command::Mail(vec!["<pat@city.test>", "SIZE=100"]))
        );
        assert_eq!(
            decode(&frame(b'R', b"<sam@example.com>\0")),
            Ok(Command::Rcpt(vec!["<sam@example.com>"]))
        );
        assert_eq!(decode(&frame(b'T', b"")), Ok(Command::Data));
        assert_eq!(
            decode(&frame(b'L', b"Subject\0hello\0")),
            Ok(Command::Header {
                name: "Subject",
                value: "hello"
            })
        );
        assert_eq!(decode(&frame(b'N', b"")), Ok(Command::EndOfHeaders));
        assert_eq!(
            decode(&frame(b'B', b"body\r\n")),
            Ok(Command::Body(b"body\r\n"))
        );
        assert_eq!(decode(&frame(b'E', b"")), Ok(Command::EndOfBody));
        assert_eq!(decode(&frame(b'A', b"")), Ok(Command::Abort));
        assert_eq!(decode(&frame(b'Q', b"")), Ok(Command::Quit));
        assert_eq!(decode(&frame(b'K', b"")), Ok(Command::QuitNewConnection));
        assert_eq!(
            decode(&frame(b'U', b"XYZZY\0")),
            Ok(Command::Unknown(b"XYZZY\0"))
        );
    }

    #[test]
    fn bad_input_is_an_error() {
        assert_eq!(
            decode(&frame(b'Z', b"")),
            Err(CodecError::UnknownCommand(b'Z'))
        );
        assert_eq!(
            decode(&frame(b'O', b"\0\0")),
            Err(CodecError::Malformed('O'))
        );
        assert_eq!(decode(&frame(b'L', b"")), Err(CodecError::Malformed('L')));
        assert_eq!(
            decode(&frame(b'C', b"no-nul")),
            Err(CodecError::Malformed('C'))
        );
        assert!(decode(&[]).is_err());
        assert_eq!(check_length(0), Err(CodecError::BadLength(0)));
        assert!(check_length(MAX_FRAME as u32 + 1).is_err());
        assert_eq!(check_length(5), Ok(5));
    }

    #[test]
    fn encodes_responses() {
        let mut out = Vec::new();
        Response::ReplyCode("550 5.7.1 no".into()).encode(&mut out);
        assert_eq!(out, b"\0\0\0\x0ey550 5.7.1 no\0");
        out.clear();
        Response::AddHeader {
            name: "X-A".into(),
            value: "b".into(),
        }
        .encode(&mut out);
        assert_eq!(out, b"\0\0\0\x07hX-A\0b\0");
        out.clear();
        Response::Accept.encode(&mut out);
        assert_eq!(out, b"\0\0\0\x01a");
    }

    #[test]
    fn body_display_hides_content() {
        assert_eq!(
            Command::Body(b"SSN 536-22-4817").to_string(),
            "BODY [15 bytes]"
        );
    }

    #[test]
    fn sanitize_strips_controls_and_percent() {
        assert_eq!(sanitize("a\r\nb%c", 100), "a  b c");
        assert_eq!(sanitize("abcdefghij", 8), "abcde...");
    }
}
