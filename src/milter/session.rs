//! One milter connection's protocol state: what has been negotiated, the message being
//! received, and the replies each command needs. No I/O: the server feeds commands in and
//! writes out what comes back.

use super::codec::{self, Command, Response};
use super::{Action, Decision, Envelope};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Protocol steps maildlp does not need, and steps it never answers (no-reply flags), as asked
/// for in option negotiation, and header values with their leading whitespace (so the message
/// kept in quarantine and released is the one sent, byte for byte: without it Postfix and
/// Sendmail drop the space after the colon, and whether there was one is lost). The MTA grants
/// what it supports.
const WANT_PROTOCOL: u32 = codec::SMFIP_HDR_LEADSPC
    | codec::SMFIP_NOHELO
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

/// The bytes all connections may hold in message buffers together (`Config::max_buffered_bytes`):
/// many connections each sending a large message cannot grow memory past it. A message that
/// would pass it is not buffered and is answered with a tempfail.
#[derive(Debug)]
pub struct Budget {
    held: AtomicUsize,
    limit: usize,
}

impl Budget {
    pub fn new(limit: usize) -> Arc<Budget> {
        Arc::new(Budget {
            held: AtomicUsize::new(0),
            limit,
        })
    }

    /// No limit (a session on its own, tests).
    pub fn unlimited() -> Arc<Budget> {
        Budget::new(usize::MAX)
    }

    /// Bytes held now, by all connections.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::Acquire)
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    fn try_take(&self, n: usize) -> bool {
        self.held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |h| {
                h.checked_add(n).filter(|&t| t <= self.limit)
            })
            .is_ok()
    }

    fn give_back(&self, n: usize) {
        if n > 0 {
            self.held.fetch_sub(n, Ordering::AcqRel);
        }
    }
}

/// The part of the [`Budget`] one message holds. Given back when dropped, so every path (end
/// of message, abort, a new MAIL, a closed or broken connection, a judge that outlives its
/// time limit) returns it.
#[derive(Debug)]
pub struct Reservation {
    budget: Arc<Budget>,
    bytes: usize,
}

impl Reservation {
    fn new(budget: &Arc<Budget>) -> Self {
        Reservation {
            budget: budget.clone(),
            bytes: 0,
        }
    }

    /// Hold `n` more bytes if the budget allows.
    fn grow(&mut self, n: usize) -> bool {
        if self.budget.try_take(n) {
            self.bytes += n;
            true
        } else {
            false
        }
    }

    /// Hold `n` more bytes even past the limit (an allocator rounding up a few bytes).
    fn grow_anyway(&mut self, n: usize) {
        self.budget.held.fetch_add(n, Ordering::AcqRel);
        self.bytes += n;
    }

    fn release(&mut self) {
        self.budget.give_back(std::mem::take(&mut self.bytes));
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.release();
    }
}

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
    /// Close the connection: the peer broke the protocol (the reason, for the log).
    Refuse(String),
}

pub struct Session {
    protocol: u32,
    /// Actions the MTA allows (quarantine may be refused).
    actions: u32,
    max_message_bytes: usize,
    pub envelope: Envelope,
    /// Headers + blank line + body, as the handler receives them.
    message: Vec<u8>,
    /// What `message` holds of the shared budget: its capacity.
    held: Reservation,
    budget: Arc<Budget>,
    /// Bytes of the current message received, buffered or not.
    received: usize,
    in_body: bool,
    oversize: bool,
    /// The shared budget could not take the message: it is not buffered.
    over_budget: bool,
    negotiated: bool,
    /// Between MAIL and the end of the message (or an abort).
    in_message: bool,
}

impl Session {
    /// A session with no limit on the bytes buffered across connections.
    pub fn new(max_message_bytes: usize) -> Self {
        Session::with_budget(max_message_bytes, Budget::unlimited())
    }

    /// A session whose message buffer is charged to `budget`, shared with other connections.
    pub fn with_budget(max_message_bytes: usize, budget: Arc<Budget>) -> Self {
        Session {
            protocol: 0,
            actions: 0,
            max_message_bytes,
            envelope: Envelope::default(),
            message: Vec::new(),
            held: Reservation::new(&budget),
            budget,
            received: 0,
            in_body: false,
            oversize: false,
            over_budget: false,
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

    /// The shared budget could not take this message: it was not buffered.
    pub fn is_over_budget(&self) -> bool {
        self.over_budget
    }

    /// Bytes of the current message received so far (buffered or not).
    pub fn received(&self) -> usize {
        self.received
    }

    /// The budget this session's buffer is charged to.
    pub fn budget(&self) -> &Arc<Budget> {
        &self.budget
    }

    pub fn message(&self) -> &[u8] {
        &self.message
    }

    /// The message, moved out for judging, with the budget it holds: the bytes stay counted
    /// until the judge is done with them (even past [`Session::finish`], if the judge overruns
    /// its time limit).
    pub fn take_message(&mut self) -> (Vec<u8>, Reservation) {
        let held = std::mem::replace(&mut self.held, Reservation::new(&self.budget));
        (std::mem::take(&mut self.message), held)
    }

    /// Header values come, and added headers go, with their leading whitespace
    /// (SMFIP_HDR_LEADSPC granted).
    fn leading_space(&self) -> bool {
        self.protocol & codec::SMFIP_HDR_LEADSPC != 0
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
        self.drop_buffer();
        self.received = 0;
        self.in_body = false;
        self.oversize = false;
        self.over_budget = false;
        self.in_message = false;
    }

    fn drop_buffer(&mut self) {
        self.message = Vec::new();
        self.held.release();
    }

    fn append(&mut self, data: &[u8]) {
        self.received = self.received.saturating_add(data.len());
        if self.oversize {
            return;
        }
        if self.received > self.max_message_bytes {
            self.oversize = true;
            self.drop_buffer();
            return;
        }
        if self.over_budget {
            return;
        }
        let need = self.message.len() + data.len();
        if need > self.message.capacity() {
            // Grow as Vec would (doubling), but charge the budget first, for the capacity.
            let target = need
                .max(self.message.capacity().saturating_mul(2))
                .max(8 * 1024)
                .min(self.max_message_bytes.max(need));
            if !self.held.grow(target - self.message.capacity()) {
                self.over_budget = true;
                self.drop_buffer();
                return;
            }
            self.message.reserve_exact(target - self.message.len());
            let charged = self.held.bytes();
            if self.message.capacity() > charged {
                self.held.grow_anyway(self.message.capacity() - charged);
            }
        }
        self.message.extend_from_slice(data);
    }

    /// Handle one command.
    pub fn handle(&mut self, cmd: Command<'_>) -> Step {
        // Nothing but option negotiation opens a connection (an MTA always negotiates first):
        // a peer that does otherwise is not an MTA speaking the protocol.
        if !self.negotiated && !matches!(cmd, Command::OptNeg { .. } | Command::Quit) {
            return Step::Refuse(format!("{cmd} before option negotiation"));
        }
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
                // The header as it was written (bytes: it need not be UTF-8). With
                // SMFIP_HDR_LEADSPC the value is all that followed the colon; without it the
                // MTA removed the space after the colon, which is put back. Postfix sends
                // the lines of a folded header joined by a bare LF: the message kept (and
                // released) uses CRLF throughout, as SMTP requires.
                let (sep, value): (&[u8], &[u8]) = if self.leading_space() {
                    (b":", value)
                } else {
                    (b": ", trim_leading_blanks(value))
                };
                let mut line = Vec::with_capacity(name.len() + value.len() + 4);
                line.extend_from_slice(name);
                line.extend_from_slice(sep);
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
        // With SMFIP_HDR_LEADSPC the MTA writes `name:value`: the space is the filter's to add.
        let space = if self.leading_space() { " " } else { "" };
        let headers = || {
            decision
                .header_fields()
                .map(|(name, value)| Response::AddHeader {
                    name,
                    value: format!("{space}{value}"),
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
        // SMFIP_HDR_LEADSPC was granted: the added header's value carries its space.
        assert_eq!(out, b"\0\0\0\x08hX-A\x00 1\0\0\0\0\x06qheld\0\0\0\0\x01a");
    }

    /// Sendmail and Postfix send header values without the space after the colon unless the
    /// filter asks for SMFIP_HDR_LEADSPC: with it granted, the message is rebuilt exactly
    /// (extra spaces, a tab, no space, an empty value) and added headers carry their space.
    #[test]
    fn header_values_keep_their_leading_whitespace_when_the_mta_allows() {
        let headers: [(&[u8], &[u8]); 5] = [
            (b"Subject", b" hi"),
            (b"X-Spaces", b"    four"),
            (b"X-Tab", b"\tone tab"),
            (b"X-None", b"tight"),
            (b"X-Empty", b""),
        ];
        let decision = Decision {
            action: Action::Accept,
            add_headers: vec![("X-A".into(), "1".into())],
        };
        // As Sendmail 8.17 offers (every flag): granted.
        let mut s = Session::new(10_000);
        let Step::Reply(reply) = s.handle(Command::OptNeg {
            version: 6,
            actions: 0x1ff,
            protocol: 0x1fffff,
        }) else {
            panic!("no OPTNEG reply");
        };
        let granted = u32::from_be_bytes([reply[13], reply[14], reply[15], reply[16]]);
        assert_ne!(granted & codec::SMFIP_HDR_LEADSPC, 0, "{granted:#x}");
        s.handle(Command::Mail(vec!["<a@b>"]));
        for (name, value) in headers {
            s.handle(Command::Header { name, value });
        }
        s.handle(Command::EndOfHeaders);
        assert_eq!(
            s.message(),
            b"Subject: hi\r\nX-Spaces:    four\r\nX-Tab:\tone tab\r\nX-None:tight\r\n\
              X-Empty:\r\n\r\n"
        );
        assert_eq!(s.finish(&decision), b"\0\0\0\x08hX-A\x00 1\0\0\0\0\x01a");

        // An MTA that does not offer it: values come without the space, which is put back.
        let mut s = Session::new(10_000);
        s.handle(Command::OptNeg {
            version: 6,
            actions: 0x1ff,
            protocol: 0x1fffff & !codec::SMFIP_HDR_LEADSPC,
        });
        s.handle(Command::Mail(vec!["<a@b>"]));
        s.handle(Command::Header {
            name: b"Subject",
            value: b"hi",
        });
        s.handle(Command::EndOfHeaders);
        assert_eq!(s.message(), b"Subject: hi\r\n\r\n");
        assert_eq!(s.finish(&decision), b"\0\0\0\x07hX-A\x001\0\0\0\0\x01a");
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

    #[test]
    fn commands_before_option_negotiation_close_the_connection() {
        let cmds: Vec<Command<'_>> = vec![
            Command::Mail(vec!["<a@b>"]),
            Command::Rcpt(vec!["<a@b>"]),
            Command::Header {
                name: b"Subject",
                value: b"x",
            },
            Command::EndOfHeaders,
            Command::Body(b"x"),
            Command::EndOfBody,
            Command::Macro {
                for_command: b'M',
                pairs: vec![("i", "Q")],
            },
            Command::Connect {
                hostname: "h",
                address: None,
            },
            Command::Helo("h"),
            Command::Data,
            Command::Abort,
            Command::Unknown(b"x"),
        ];
        for cmd in cmds {
            let shown = cmd.to_string();
            let mut s = Session::new(1000);
            match s.handle(cmd) {
                Step::Refuse(why) => {
                    assert!(why.contains("before option negotiation"), "{why}");
                    assert!(why.starts_with(&shown), "{why}");
                }
                other => panic!("{shown} before OPTNEG: {other:?}"),
            }
            assert!(s.message().is_empty());
            assert!(s.envelope.mail_from.is_empty());
        }
        // After negotiation the same commands are served.
        let mut s = negotiated(true);
        assert_eq!(s.handle(Command::Mail(vec!["<a@b>"])), Step::Nothing);
        assert_eq!(s.handle(Command::EndOfBody), Step::Judge);
        // QUIT before negotiation just closes.
        assert_eq!(Session::new(10).handle(Command::Quit), Step::Close);
    }

    fn body_of(s: &mut Session, n: usize) {
        s.handle(Command::Mail(vec!["<a@b>"]));
        s.handle(Command::EndOfHeaders);
        for _ in 0..n / 1000 {
            s.handle(Command::Body(&[b'x'; 1000]));
        }
    }

    #[test]
    fn the_shared_budget_bounds_what_all_sessions_buffer() {
        let budget = Budget::new(100_000);
        let open = |budget: &Arc<Budget>| {
            let mut s = Session::with_budget(1_000_000, budget.clone());
            s.handle(Command::OptNeg {
                version: 6,
                actions: 0x1ff,
                protocol: 0x1fffff,
            });
            s
        };
        let mut a = open(&budget);
        let mut b = open(&budget);
        body_of(&mut a, 60_000);
        assert!(!a.is_over_budget());
        assert_eq!(a.message().len(), 60_002);
        assert!(budget.held() >= 60_002 && budget.held() <= 100_000);
        // The second message does not fit beside the first: not buffered, flagged.
        body_of(&mut b, 60_000);
        assert!(b.is_over_budget());
        assert!(b.message().is_empty());
        assert_eq!(b.received(), 60_002);
        assert!(budget.held() <= 100_000, "{}", budget.held());
        assert_eq!(b.handle(Command::EndOfBody), Step::Judge);
        // Finishing gives its bytes back; the flag does not outlive the message.
        b.finish(&Decision::accept());
        assert!(!b.is_over_budget());
        // Judging holds the bytes until the judge drops them.
        let (message, held) = a.take_message();
        assert_eq!(message.len(), 60_002);
        assert!(held.bytes() >= 60_002);
        a.finish(&Decision::accept());
        assert!(budget.held() >= 60_002);
        drop((message, held));
        assert_eq!(budget.held(), 0);
        // Now the other session's next message fits; abort and a closed session give back.
        body_of(&mut b, 60_000);
        assert!(!b.is_over_budget());
        b.handle(Command::Abort);
        assert_eq!(budget.held(), 0);
        body_of(&mut b, 60_000);
        assert!(budget.held() > 0);
        drop(b);
        assert_eq!(budget.held(), 0);
        // An oversize message gives back what it held and is reported oversize.
        let mut c = Session::with_budget(50_000, budget.clone());
        c.handle(Command::OptNeg {
            version: 6,
            actions: 0x1ff,
            protocol: 0x1fffff,
        });
        body_of(&mut c, 60_000);
        assert!(c.is_oversize() && !c.is_over_budget());
        assert_eq!(budget.held(), 0);
    }
}
