//! One milter connection's protocol state: what has been negotiated, the message being
//! received, and the replies each command needs. No I/O: the server feeds commands in and
//! writes out what comes back.

use super::codec::{self, Command, Response};
use super::{Action, Decision, Envelope};

/// Protocol steps maildlp does not need, and steps it never answers (no-reply flags), as asked
/// for in option negotiation. The MTA grants what it supports.
const WANT_PROTOCOL: u32 = codec::SMFIP_NOHELO
    | codec::SMFIP_NOUNKNOWN
    | codec::SMFIP_NODATA
    | codec::SMFIP_NR_CONN
    | codec::SMFIP_NR_HELO
    | codec::SMFIP_NR_MAIL
    | codec::SMFIP_NR_RCPT
    | codec::SMFIP_NR_DATA
    | codec::SMFIP_NR_UNKN
    | codec::SMFIP_NR_HDR
    | codec::SMFIP_NR_EOH
    | codec::SMFIP_NR_BODY;

/// Add headers, and quarantine.
const WANT_ACTIONS: u32 = codec::SMFIF_ADDHDRS | codec::SMFIF_QUARANTINE;

/// Recipients kept per message and macros kept per connection: an MTA sends far fewer
/// (Postfix's smtpd_recipient_limit is 1000); a peer sending more cannot grow memory.
const MAX_RECIPIENTS: usize = 10_000;
const MAX_MACROS: usize = 256;

/// What the server does after a command.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Nothing to send.
    Nothing,
    /// Send these bytes.
    Reply(Vec<u8>),
    /// The message is complete: judge it (or use the oversize decision) and send
    /// [`Session::finish`]'s bytes.
    Judge,
    /// Close the connection.
    Close,
}

pub struct Session {
    protocol: u32,
    /// Actions the MTA allows (quarantine may be refused).
    actions: u32,
    max_message_bytes: usize,
    pub envelope: Envelope,
    /// Headers + blank line + body, as the handler receives them.
    message: Vec<u8>,
    in_body: bool,
    oversize: bool,
    negotiated: bool,
    /// Between MAIL and the end of the message (or an abort).
    in_message: bool,
}

impl Session {
    pub fn new(max_message_bytes: usize) -> Self {
        Session {
            protocol: 0,
            actions: 0,
            max_message_bytes,
            envelope: Envelope::default(),
            message: Vec::new(),
            in_body: false,
            oversize: false,
            negotiated: false,
            in_message: false,
        }
    }

    /// No message in progress: the connection can be closed without losing one.
    pub fn idle(&self) -> bool {
        !self.in_message
    }

    pub fn is_oversize(&self) -> bool {
        self.oversize
    }

    pub fn message(&self) -> &[u8] {
        &self.message
    }

    fn no_reply(&self, flag: u32) -> bool {
        self.protocol & flag != 0
    }

    fn cont(&self, nr_flag: u32) -> Step {
        if self.no_reply(nr_flag) {
            Step::Nothing
        } else {
            Step::Reply(bytes(&[Response::Continue]))
        }
    }

    /// Forget the current message (after end of message, abort, or a new MAIL).
    fn reset_message(&mut self) {
        let keep_conn = (self.envelope.client_addr.take(), self.envelope.helo.take());
        self.envelope = Envelope {
            client_addr: keep_conn.0,
            helo: keep_conn.1,
            ..Envelope::default()
        };
        self.message = Vec::new();
        self.in_body = false;
        self.oversize = false;
        self.in_message = false;
    }

    fn append(&mut self, data: &[u8]) {
        if self.oversize {
            return;
        }
        if self.message.len() + data.len() > self.max_message_bytes {
            self.oversize = true;
            self.message = Vec::new();
            return;
        }
        self.message.extend_from_slice(data);
    }

    /// Handle one command.
    pub fn handle(&mut self, cmd: Command<'_>) -> Step {
        match cmd {
            Command::OptNeg {
                version,
                actions,
                protocol,
            } => {
                if version < 2 {
                    return Step::Close;
                }
                self.protocol = protocol & WANT_PROTOCOL;
                self.actions = actions & WANT_ACTIONS;
                self.negotiated = true;
                Step::Reply(bytes(&[Response::OptNeg {
                    version: codec::VERSION.min(version),
                    actions: actions & WANT_ACTIONS,
                    protocol: self.protocol,
                }]))
            }
            Command::Macro { pairs, .. } => {
                for (k, v) in pairs {
                    let name = k.trim_start_matches('{').trim_end_matches('}');
                    if name == "i" {
                        self.envelope.queue_id = Some(v.to_string());
                    }
                    if self.envelope.macros.len() < MAX_MACROS
                        || self.envelope.macros.contains_key(name)
                    {
                        self.envelope.macros.insert(name.to_string(), v.to_string());
                    }
                }
                Step::Nothing
            }
            Command::Connect { address, .. } => {
                self.envelope.client_addr = address;
                self.cont(codec::SMFIP_NR_CONN)
            }
            Command::Helo(h) => {
                self.envelope.helo = Some(h.to_string());
                self.cont(codec::SMFIP_NR_HELO)
            }
            Command::Mail(args) => {
                let queue_id = self.envelope.queue_id.take();
                let macros = std::mem::take(&mut self.envelope.macros);
                self.reset_message();
                self.envelope.queue_id = queue_id;
                self.envelope.macros = macros;
                self.envelope.mail_from = strip_brackets(args.first().copied().unwrap_or(""));
                self.in_message = true;
                self.cont(codec::SMFIP_NR_MAIL)
            }
            Command::Rcpt(args) => {
                let rcpt = strip_brackets(args.first().copied().unwrap_or(""));
                if !rcpt.is_empty() {
                    if self.envelope.rcpt_to.len() < MAX_RECIPIENTS {
                        self.envelope.rcpt_to.push(rcpt);
                    } else {
                        self.envelope.recipients_over_limit += 1;
                    }
                }
                self.cont(codec::SMFIP_NR_RCPT)
            }
            Command::Data => self.cont(codec::SMFIP_NR_DATA),
            Command::Header { name, value } => {
                // The header as it was written (bytes: it need not be UTF-8). Postfix sends
                // the lines of a folded header joined by a bare LF: the message kept (and
                // released) uses CRLF throughout, as SMTP requires.
                let value = trim_leading_blanks(value);
                let mut line = Vec::with_capacity(name.len() + value.len() + 4);
                line.extend_from_slice(name);
                line.extend_from_slice(b": ");
                let mut prev = 0u8;
                for &c in value {
                    if c == b'\n' && prev != b'\r' {
                        line.push(b'\r');
                    }
                    line.push(c);
                    prev = c;
                }
                line.extend_from_slice(b"\r\n");
                self.append(&line);
                self.cont(codec::SMFIP_NR_HDR)
            }
            Command::EndOfHeaders => {
                self.append(b"\r\n");
                self.in_body = true;
                self.cont(codec::SMFIP_NR_EOH)
            }
            Command::Body(chunk) => {
                if !self.in_body {
                    self.append(b"\r\n");
                    self.in_body = true;
                }
                self.append(chunk);
                self.cont(codec::SMFIP_NR_BODY)
            }
            Command::EndOfBody => Step::Judge,
            Command::Abort => {
                self.reset_message();
                Step::Nothing
            }
            Command::Quit => Step::Close,
            Command::QuitNewConnection => {
                self.reset_message();
                self.envelope = Envelope::default();
                Step::Nothing
            }
            Command::Unknown(_) => self.cont(codec::SMFIP_NR_UNKN),
        }
    }

    /// The end-of-message packets for `decision`, in one buffer (one write: see
    /// shared/notes/milter-latency.md), and the message state reset for the next one.
    pub fn finish(&mut self, decision: &Decision) -> Vec<u8> {
        let mut out = Vec::new();
        let mut responses: Vec<Response> = Vec::new();
        let headers = || {
            decision
                .add_headers
                .iter()
                .map(|(n, v)| Response::AddHeader {
                    name: codec::sanitize(n, 100).replace(' ', "-"),
                    value: codec::sanitize(v, 900),
                })
        };
        match &decision.action {
            Action::Accept => {
                responses.extend(headers());
                responses.push(Response::Accept);
            }
            // An MTA that did not allow quarantine must not accept the message instead.
            Action::Quarantine { .. } if self.actions & codec::SMFIF_QUARANTINE == 0 => {
                responses.push(Response::ReplyCode(
                    "451 4.7.1 message held for review, but this MTA does not allow quarantine"
                        .to_string(),
                ));
            }
            Action::Quarantine { reason } => {
                responses.extend(headers());
                responses.push(Response::Quarantine(codec::sanitize(reason, 400)));
                responses.push(Response::Accept);
            }
            Action::Reject { code, xcode, text } | Action::TempFail { code, xcode, text } => {
                responses.push(Response::ReplyCode(format!(
                    "{} {} {}",
                    codec::sanitize(code, 3),
                    codec::sanitize(xcode, 12),
                    codec::sanitize(text, 450)
                )));
            }
            Action::Discard => responses.push(Response::Discard),
        }
        for r in &responses {
            r.encode(&mut out);
        }
        self.reset_message();
        out
    }
}

fn bytes(responses: &[Response]) -> Vec<u8> {
    let mut out = Vec::new();
    for r in responses {
        r.encode(&mut out);
    }
    out
}

fn trim_leading_blanks(v: &[u8]) -> &[u8] {
    let start = v
        .iter()
        .position(|&c| c != b' ' && c != b'\t')
        .unwrap_or(v.len());
    &v[start..]
}

fn strip_brackets(addr: &str) -> String {
    addr.trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn negotiated(all_nr: bool) -> Session {
        let mut s = Session::new(1000);
        let protocol = if all_nr { 0x1fffff } else { 0 };
        let step = s.handle(Command::OptNeg {
            version: 6,
            actions: 0x1ff,
            protocol,
        });
        assert!(matches!(step, Step::Reply(_)));
        s
    }

    #[test]
    fn builds_the_message_and_envelope() {
        let mut s = negotiated(true);
        assert_eq!(
            s.handle(Command::Macro {
                for_command: b'M',
                pairs: vec![("i", "Q1")]
            }),
            Step::Nothing
        );
        assert_eq!(
            s.handle(Command::Mail(vec!["<pat@city.test>"])),
            Step::Nothing
        );
        s.handle(Command::Rcpt(vec!["<a@example.com>"]));
        s.handle(Command::Rcpt(vec!["<b@example.com>"]));
        s.handle(Command::Header {
            name: b"Subject",
            value: b" hi",
        });
        s.handle(Command::EndOfHeaders);
        s.handle(Command::Body(b"line\r\n"));
        assert_eq!(s.handle(Command::EndOfBody), Step::Judge);
        assert_eq!(s.envelope.mail_from, "pat@city.test");
        assert_eq!(s.envelope.rcpt_to, vec!["a@example.com", "b@example.com"]);
        assert_eq!(s.envelope.queue_id.as_deref(), Some("Q1"));
        assert_eq!(s.message(), b"Subject: hi\r\n\r\nline\r\n");
        s.handle(Command::Mail(vec!["<pat@city.test>"]));
        s.handle(Command::Header {
            name: b"Subject",
            value: b" a\n\tb\r\n c",
        });
        assert_eq!(s.message(), b"Subject: a\r\n\tb\r\n c\r\n");
        let out = s.finish(&Decision::accept());
        assert_eq!(out, b"\0\0\0\x01a");
        assert!(s.message().is_empty());
        assert!(s.envelope.rcpt_to.is_empty());
    }

    #[test]
    fn without_no_reply_flags_every_step_is_answered() {
        let mut s = negotiated(false);
        assert_eq!(
            s.handle(Command::Mail(vec!["<a@b>"])),
            Step::Reply(b"\0\0\0\x01c".to_vec())
        );
    }

    #[test]
    fn oversize_stops_buffering() {
        let mut s = negotiated(true);
        s.handle(Command::Mail(vec!["<a@b>"]));
        s.handle(Command::EndOfHeaders);
        s.handle(Command::Body(&[b'x'; 800]));
        s.handle(Command::Body(&[b'x'; 800]));
        assert!(s.is_oversize());
        assert!(s.message().is_empty());
    }

    #[test]
    fn reject_and_quarantine_encode_in_one_buffer() {
        let mut s = negotiated(true);
        let out = s.finish(&Decision {
            action: Action::Reject {
                code: "550".into(),
                xcode: "5.7.1".into(),
                text: "no\r\nway".into(),
            },
            add_headers: vec![],
        });
        assert_eq!(out, b"\0\0\0\x13y550 5.7.1 no  way\0");
        let out = s.finish(&Decision {
            action: Action::Quarantine {
                reason: "held".into(),
            },
            add_headers: vec![("X-A".into(), "1".into())],
        });
        assert_eq!(out, b"\0\0\0\x07hX-A\x001\0\0\0\0\x06qheld\0\0\0\0\x01a");
    }

    #[test]
    fn quarantine_without_permission_is_a_tempfail_not_an_accept() {
        let mut s = Session::new(1000);
        s.handle(Command::OptNeg {
            version: 6,
            actions: codec::SMFIF_ADDHDRS,
            protocol: 0,
        });
        let out = s.finish(&Decision {
            action: Action::Quarantine {
                reason: "held".into(),
            },
            add_headers: vec![],
        });
        assert_eq!(out[4], b'y');
        assert!(out.windows(3).any(|w| w == b"451"));
    }

    #[test]
    fn recipients_and_macros_are_bounded() {
        let mut s = negotiated(true);
        s.handle(Command::Mail(vec!["<a@b>"]));
        let names: Vec<String> = (0..1000).map(|i| format!("m{i}")).collect();
        for n in &names {
            s.handle(Command::Macro {
                for_command: b'R',
                pairs: vec![(n.as_str(), "v")],
            });
        }
        assert_eq!(s.envelope.macros.len(), MAX_MACROS);
        for _ in 0..MAX_RECIPIENTS + 50 {
            s.handle(Command::Rcpt(vec!["<x@example.com>"]));
        }
        assert_eq!(s.envelope.rcpt_to.len(), MAX_RECIPIENTS);
        assert_eq!(s.envelope.recipients_over_limit, 50);
    }

    #[test]
    fn abort_resets_the_message_not_the_connection() {
        let mut s = negotiated(true);
        s.handle(Command::Connect {
            hostname: "h",
            address: Some("192.0.2.1".into()),
        });
        s.handle(Command::Mail(vec!["<a@b>"]));
        s.handle(Command::Header {
            name: b"X",
            value: b"y",
        });
        s.handle(Command::Abort);
        assert!(s.message().is_empty());
        assert_eq!(s.envelope.client_addr.as_deref(), Some("192.0.2.1"));
    }
}
