//! The one adapter between the wire and rsipstack's `sip` module.
//!
//! Everything that reads or writes SIP text goes through here, so the parser can be swapped
//! without touching the transaction, dialog or call-leg code. This module adds what the
//! library leaves to its caller:
//!
//! * **Framing** (RFC 3261 §18.3): the body length comes from `Content-Length` (or its compact
//!   form `l`); over UDP a missing `Content-Length` means "the rest of the datagram", a value
//!   larger than the datagram is an error, and extra bytes after the body are ignored. Over a
//!   stream, [`StreamFramer`] cuts messages by the same header.
//! * **Validation** of every header the engine uses (Via branch, Call-ID, CSeq, From/To tags):
//!   rsipstack parses header values lazily, so a message can "parse" with a broken CSeq; here
//!   such a message is rejected with a [`ParseError`] naming the header, and a request gets a
//!   400 from the caller.
//! * **Responses read by one scan**: a response's Status-Line, `Content-Length` and the headers
//!   the match needs (top Via branch, Call-ID, CSeq, From/To tags) are read in one pass over
//!   its header lines, with the same checks; rsipstack parses the whole response only when a
//!   layer asks for it ([`Inbound::msg`]: a 2xx's Contact and Record-Route, a challenge, a
//!   final response's Reason). A folded line sends a response to the full parse at once. Tests
//!   compare the two readings on every response fixture and on mutations of them.
//! * **Extension methods**: rsipstack rejects request methods it does not know; a request with
//!   any valid RFC 3261 `token` as method is accepted here and carried as
//!   [`Inbound::method`], so the engine can answer `501 Not Implemented` instead of dropping it.
//!
//! Compact header names (§7.3.3), folded header lines and whitespace before the colon (§7.3.1)
//! are handled by rsipstack's parser; the fixtures in `sip-fixtures/messages/` cover each.

/// rsipstack's typed SIP vocabulary (headers, methods, URIs) as the cores outside `sip` use it:
/// every use of the library goes through this module, so it stays the one adapter.
pub use rsipstack::sip as wire;

use std::borrow::Cow;
use std::fmt;
use std::net::SocketAddr;

use rsipstack::sip::headers::untyped::ToTypedHeader;
pub use rsipstack::sip::{
    HasHeaders, Header, Headers, HeadersExt, Method, Request, Response, SipMessage,
};
use rsipstack::sip::{StatusCode, Uri, Version};

/// The transport a message came in on or goes out on (RFC 3261 §18).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// Datagrams: the transaction layer retransmits (Timers A, E, G).
    Udp,
    /// A byte stream framed by `Content-Length`: reliable, no retransmissions.
    Tcp,
}

impl Transport {
    /// `UDP` / `TCP`, as written in a Via header.
    pub fn via_name(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
        }
    }
    /// `udp` / `tcp`, as written in a `transport=` URI parameter.
    pub fn param_name(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        }
    }
    /// Whether the transport is reliable (RFC 3261 §17: no retransmission timers).
    pub fn is_reliable(self) -> bool {
        matches!(self, Transport::Tcp)
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.param_name())
    }
}

/// Why a message was not accepted. The text names the part of the message at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// No empty line (CRLF CRLF) ends the header section.
    #[error("no end of header section (CRLF CRLF)")]
    NoHeaderEnd,
    /// The header section is not valid UTF-8.
    #[error("header section is not valid UTF-8")]
    NotUtf8,
    /// `Content-Length` is not a decimal number.
    #[error("malformed Content-Length {0:?}")]
    BadContentLength(String),
    /// Over UDP, `Content-Length` announces more bytes than the datagram holds (§18.3).
    #[error("Content-Length {declared} exceeds the {available} body bytes received")]
    TruncatedBody {
        /// The declared length in bytes.
        declared: usize,
        /// The bytes actually present after the header section.
        available: usize,
    },
    /// The request or status line is malformed.
    #[error("malformed start line: {0}")]
    StartLine(String),
    /// A header the engine needs is missing or malformed.
    #[error("missing or malformed {name} header: {why}")]
    Header {
        /// The header's canonical name.
        name: &'static str,
        /// What is wrong with it.
        why: String,
    },
}

/// A parsed, validated message with the fields every layer needs already extracted.
///
/// Requests are parsed by rsipstack at once. Responses are read by one pass over their header
/// lines that takes only what the transaction and call-leg match needs (status, Call-ID, CSeq,
/// top Via branch, From and To tags); rsipstack's parse of the whole message runs the first
/// time [`Inbound::msg`] is asked for (a 2xx's Contact and Record-Route, a challenge, a final
/// response's Reason), so a 100 Trying, a 180 Ringing or the 200 to a BYE never build the
/// header list (issue 19: the per-response path).
#[derive(Debug, Clone)]
pub struct Inbound {
    /// The message as rsipstack parsed it, filled on first use for responses.
    msg: std::sync::OnceLock<SipMessage>,
    /// One buffer for the text this message keeps: a scanned response's header section (start
    /// line to CRLF CRLF, its first `head_len` bytes, kept for the parse of [`Inbound::msg`]),
    /// then any field value that is not a slice of it (a request's, read from rsipstack's
    /// parse). The fields below are byte ranges into it, so a message costs one allocation
    /// for its text, not one per field.
    text: Box<str>,
    /// Bytes of `text` that are a response's header section; 0 when `msg` was parsed at once.
    head_len: usize,
    /// The body (`Content-Length` bytes, or the rest of a datagram without one).
    body: Vec<u8>,
    /// For requests, the method token exactly as received (`INVITE`, `BYE`, or an extension
    /// such as `NEWMETHOD`); `None` for responses.
    pub method: Option<String>,
    /// For responses, the status code.
    pub status: Option<u16>,
    /// The CSeq sequence number (RFC 3261 §8.1.1.5: 0 ..= 2^31-1).
    pub cseq: u32,
    call_id: Span,
    cseq_method: Span,
    branch: Option<Span>,
    from_tag: Option<Span>,
    to_tag: Option<Span>,
}

/// A byte range of [`Inbound`]'s text.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: u32,
    end: u32,
}

/// Where `value` starts inside `head`, when it is a slice of it (a value the scan read
/// from the header section an [`Inbound`] keeps).
fn offset_in(head: &str, value: &str) -> Option<usize> {
    let (h, v) = (head.as_ptr() as usize, value.as_ptr() as usize);
    (v >= h && v + value.len() <= h + head.len()).then(|| v - h)
}

impl Inbound {
    /// True for a request.
    pub fn is_request(&self) -> bool {
        self.method.is_some()
    }

    fn at(&self, span: Span) -> &str {
        &self.text[span.start as usize..span.end as usize]
    }

    /// The Call-ID value (RFC 3261 §20.8), trimmed.
    pub fn call_id(&self) -> &str {
        self.at(self.call_id)
    }

    /// The CSeq method token (RFC 3261 §20.16): `INVITE`, `BYE`, or an extension method.
    pub fn cseq_method(&self) -> &str {
        self.at(self.cseq_method)
    }

    /// The `branch` parameter of the top Via, if any (RFC 3261 §8.1.1.7).
    pub fn branch(&self) -> Option<&str> {
        self.branch.map(|s| self.at(s))
    }

    /// The From tag, if any (RFC 3261 §8.1.1.3).
    pub fn from_tag(&self) -> Option<&str> {
        self.from_tag.map(|s| self.at(s))
    }

    /// The To tag, if any (present on every response from a UAS that created a dialog).
    pub fn to_tag(&self) -> Option<&str> {
        self.to_tag.map(|s| self.at(s))
    }

    /// The message body (SDP for INVITE/2xx), empty when there is none.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The whole message as rsipstack's `SipMessage` (headers typed lazily on demand). For a
    /// response the first call parses the header section kept for it; the scan that accepted
    /// the response checked its Status-Line the way rsipstack's parser does, so that parse
    /// does not fail (if it ever did, the result is the bare Status-Line without headers).
    pub fn msg(&self) -> &SipMessage {
        self.msg.get_or_init(|| {
            let head = &self.text[..self.head_len];
            let mut msg =
                rsipstack::sip::parser::parse_message(head.as_bytes()).unwrap_or_else(|_| {
                    SipMessage::Response(Response {
                        status_code: StatusCode::try_from((self.status.unwrap_or(500), ""))
                            .unwrap_or(StatusCode::ServerInternalError),
                        wire_reason: None,
                        version: Version::V2,
                        headers: Headers::default(),
                        body: Vec::new(),
                    })
                });
            match &mut msg {
                SipMessage::Request(r) => r.body = self.body.clone(),
                SipMessage::Response(r) => r.body = self.body.clone(),
            }
            msg
        })
    }

    /// The Q.850 cause of a `Reason: Q.850;cause=N` header (RFC 3326), if present and valid.
    pub fn q850_cause(&self) -> Option<u16> {
        self.msg().headers().iter().find_map(|h| match h {
            Header::Reason(r) => parse_q850(r.value()),
            _ => None,
        })
    }

    /// Seconds of a `Retry-After` header (RFC 3261 §20.33: `120 (comment);duration=3600`).
    pub fn retry_after(&self) -> Option<u32> {
        self.msg().headers().iter().find_map(|h| match h {
            Header::RetryAfter(r) => {
                let v = r.value().trim();
                let digits: String = v.chars().take_while(|c| c.is_ascii_digit()).collect();
                digits.parse().ok()
            }
            _ => None,
        })
    }

    /// The Status-Line reason phrase as received (the standard text when it was the standard
    /// one; rsipstack only keeps a non-standard phrase). `None` for requests.
    pub fn reason_phrase(&self) -> Option<String> {
        match self.msg() {
            SipMessage::Response(r) => Some(
                r.wire_reason
                    .clone()
                    .unwrap_or_else(|| r.status_code.text().to_string()),
            ),
            SipMessage::Request(_) => None,
        }
    }

    /// Values of every header called `name` (case-insensitive; a compact form such as `m` for
    /// Contact must be asked for by that letter too), in order, each as written after the colon.
    /// Not for the hot path: it prints each header to find its name.
    pub fn header_values(&self, name: &str) -> Vec<String> {
        self.msg()
            .headers()
            .iter()
            .filter_map(|h| {
                let line = h.to_string();
                let (n, v) = line.split_once(':')?;
                n.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| v.trim().to_string())
            })
            .collect()
    }

    /// The request (panics only if called on a response, which callers check first).
    pub fn request(&self) -> Option<&Request> {
        match self.msg() {
            SipMessage::Request(r) => Some(r),
            SipMessage::Response(_) => None,
        }
    }

    /// The response, if this is one.
    pub fn response(&self) -> Option<&Response> {
        match self.msg() {
            SipMessage::Response(r) => Some(r),
            SipMessage::Request(_) => None,
        }
    }
}

/// Parses `Q.850;cause=16;text="..."` (several protocols may be listed, comma-separated).
fn parse_q850(value: &str) -> Option<u16> {
    value.split(',').find_map(|part| {
        let mut params = part.split(';');
        let proto = params.next()?.trim();
        if !proto.eq_ignore_ascii_case("Q.850") {
            return None;
        }
        params.find_map(|p| {
            let (k, v) = p.split_once('=')?;
            if k.trim().eq_ignore_ascii_case("cause") {
                v.trim().parse::<u16>().ok().filter(|c| *c <= 127)
            } else {
                None
            }
        })
    })
}

/// Where the header section ends and how long the body says it is.
struct Frame {
    /// Index of the first byte of the body (just after CRLF CRLF).
    body_start: usize,
    /// `Content-Length` (or `l`), if present.
    content_length: Option<usize>,
}

/// The index of the CRLF CRLF that ends the header section (§7), by a searcher built once.
fn header_end(buf: &[u8]) -> Option<usize> {
    static FINDER: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"\r\n\r\n"));
    FINDER.find(buf)
}

/// Lines of a header section split as rsipstack's parser splits them: at LF, a CR before it
/// dropped.
fn header_lines(head: &str) -> impl Iterator<Item = &str> {
    let mut rest = head;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let (line, next) = match memchr::memchr(b'\n', rest.as_bytes()) {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, ""),
        };
        rest = next;
        Some(line.strip_suffix('\r').unwrap_or(line))
    })
}

/// Finds the end of the header section and the declared body length.
/// Leading CRLFs (keep-alives, RFC 5626 §3.5.1) must be stripped by the caller.
fn frame(buf: &[u8]) -> Result<Frame, ParseError> {
    let end = header_end(buf).ok_or(ParseError::NoHeaderEnd)?;
    let mut content_length = None;
    // Scan header lines for Content-Length / l. Folded continuation lines start with SP/HT.
    let head = &buf[..end];
    for start in memchr::memchr_iter(b'\n', head).map(|i| i + 1) {
        // A line starting with another letter is not Content-Length (one starting with white
        // space or another byte is read: the name is trimmed).
        if head
            .get(start)
            .is_some_and(|b| b.is_ascii_alphabetic() && !matches!(b | 0x20, b'c' | b'l'))
        {
            continue;
        }
        let rest = &head[start..];
        let line = &rest[..memchr::memchr(b'\n', rest).unwrap_or(rest.len())];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = memchr::memchr(b':', line) else {
            continue;
        };
        if is_content_length(trim_ascii(&line[..colon])) {
            content_length = Some(content_length_value(
                trim_ascii(&line[colon + 1..]),
                content_length,
            )?);
        }
    }
    Ok(Frame {
        body_start: end + 4,
        content_length,
    })
}

/// `Content-Length` or its compact form `l` (§7.3.3), any case.
fn is_content_length(name: &[u8]) -> bool {
    name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"l")
}

/// A `Content-Length` value (digits only, §20.14); `prev`, an earlier one in the same message,
/// must be the same number.
fn content_length_value(v: &[u8], prev: Option<usize>) -> Result<usize, ParseError> {
    let text = std::str::from_utf8(v).unwrap_or("");
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParseError::BadContentLength(
            String::from_utf8_lossy(v).into_owned(),
        ));
    }
    let n = text
        .parse::<usize>()
        .map_err(|_| ParseError::BadContentLength(text.to_string()))?;
    if let Some(prev) = prev
        && prev != n
    {
        return Err(ParseError::BadContentLength(format!(
            "two different values {prev} and {n}"
        )));
    }
    Ok(n)
}

fn trim_ascii(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if first.is_ascii_whitespace() {
            s = rest;
        } else {
            break;
        }
    }
    while let [rest @ .., last] = s {
        if last.is_ascii_whitespace() {
            s = rest;
        } else {
            break;
        }
    }
    s
}

/// RFC 3261 §25.1 `token` characters (`alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" /
/// "`" / "'" / "~"`), one entry per byte value.
const TOKEN_BYTES: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
            );
        i += 1;
    }
    t
};

/// RFC 3261 §25.1 `token`: one or more [`TOKEN_BYTES`].
fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| TOKEN_BYTES[usize::from(b)])
}

/// A byte that no trim touches and that is not white space in any reading: printable ASCII
/// other than SP (`str::trim` would also take VT and the Unicode spaces above 0x7f).
fn is_plain(b: u8) -> bool {
    (0x21..=0x7e).contains(&b)
}

/// Parses one complete UDP datagram (RFC 3261 §18.3 framing rules for datagrams).
///
/// Errors: [`ParseError`] naming what is wrong; the caller counts it, logs it once with the
/// source address, and answers 400 if the bytes looked like a request.
pub fn parse_datagram(buf: &[u8]) -> Result<Inbound, ParseError> {
    parse_datagram_with(buf, true)
}

/// The same datagram read without the response scan (rsipstack's full parse for every
/// message, then the same checks): for the differential tests and the fuzz target that hold
/// the scan to it.
#[doc(hidden)]
pub fn parse_datagram_full(buf: &[u8]) -> Result<Inbound, ParseError> {
    parse_datagram_with(buf, false)
}

fn parse_datagram_with(buf: &[u8], scan: bool) -> Result<Inbound, ParseError> {
    let buf = strip_leading_crlf(buf);
    if scan
        && buf.starts_with(b"SIP/2.0 ")
        && let Some(done) = scan_datagram_response(buf)
    {
        return done;
    }
    let f = frame(buf)?;
    let body_len = datagram_body_len(f.content_length, buf.len() - f.body_start)?;
    // A response this far was not one the scan reads (see above): no second scan.
    parse_framed(buf, f.body_start, body_len, false)
}

/// The body length of a datagram (§18.3): `Content-Length` when given and within the
/// `available` bytes after the header section (a larger one is an error), else all of them.
fn datagram_body_len(content_length: Option<usize>, available: usize) -> Result<usize, ParseError> {
    match content_length {
        None => Ok(available),
        Some(n) if n > available => Err(ParseError::TruncatedBody {
            declared: n,
            available,
        }),
        Some(n) => Ok(n),
    }
}

/// A response datagram read by [`scan_response`] alone, its framing included (one pass over
/// the header lines); `None` leaves it to the full path (no end of headers, not UTF-8, a
/// folded line), which reports or parses it as before.
fn scan_datagram_response(buf: &[u8]) -> Option<Result<Inbound, ParseError>> {
    let body_start = header_end(buf)? + 4;
    let head = std::str::from_utf8(&buf[..body_start]).ok()?;
    let first_line = header_lines(head).next()?;
    let scanned = match scan_response(head, first_line) {
        Err(e) => return Some(Err(e)),
        Ok(None) => return None,
        Ok(Some(s)) => s,
    };
    let body_len = match datagram_body_len(scanned.content_length, buf.len() - body_start) {
        Ok(n) => n,
        Err(e) => return Some(Err(e)),
    };
    let body = buf[body_start..body_start + body_len].to_vec();
    Some(scanned.into_inbound(head, body))
}

/// Where a response to `req` goes over UDP (RFC 3261 §18.2.2, RFC 3581 §4): to the address
/// the request came from (`src`, which is the top Via's `received` address) at the source
/// port when the top Via carries `rport`, else at the Via's sent-by port (5060 when it names
/// none). Over TCP the caller answers on the connection instead. A request without a usable
/// top Via is answered to `src`.
pub fn response_reply_addr(req: &Inbound, src: SocketAddr) -> SocketAddr {
    // The top Via was parsed (typed) and checked when the message was: rsipstack's reading.
    let Ok(via) = req.msg().top_via_header().and_then(|v| v.typed()) else {
        return src;
    };
    if via.rport().is_some() {
        return src;
    }
    match via.sent_by().port.as_ref().map(|p| p.value().to_owned()) {
        None => SocketAddr::new(src.ip(), 5060),
        Some(0) => src,
        Some(p) => SocketAddr::new(src.ip(), p),
    }
}

/// Parses one message already cut out of a stream by [`StreamFramer`].
pub fn parse_stream_message(buf: &[u8]) -> Result<Inbound, ParseError> {
    let f = frame(buf)?;
    let body_len = f.content_length.unwrap_or(0).min(buf.len() - f.body_start);
    parse_framed(buf, f.body_start, body_len, true)
}

fn strip_leading_crlf(mut buf: &[u8]) -> &[u8] {
    while let [b'\r' | b'\n', rest @ ..] = buf {
        buf = rest;
    }
    buf
}

/// `scan`: read responses with [`scan_response`] (messages cut from a stream; a datagram's
/// response was offered to the scan before its framing, so it comes here with `false`).
fn parse_framed(
    buf: &[u8],
    body_start: usize,
    body_len: usize,
    scan: bool,
) -> Result<Inbound, ParseError> {
    let head = &buf[..body_start];
    let head_str = std::str::from_utf8(head).map_err(|_| ParseError::NotUtf8)?;
    let first_line = header_lines(head_str).next().unwrap_or("");
    if first_line.is_empty() {
        return Err(ParseError::StartLine("empty".into()));
    }
    let body = buf[body_start..body_start + body_len].to_vec();

    // Request or response? Responses start with the SIP version.
    let mut method_token = None;
    let parsed = if first_line.starts_with("SIP/") {
        if !first_line.starts_with("SIP/2.0 ") {
            return Err(ParseError::StartLine(first_line.to_string()));
        }
        if scan && let Some(fields) = scan_response(head_str, first_line)? {
            return fields.into_inbound(head_str, body);
        }
        rsipstack::sip::parser::parse_message(head)
    } else {
        let mut parts = first_line.split(' ');
        let (m, uri, ver) = (parts.next(), parts.next(), parts.next());
        let (Some(m), Some(uri), Some(ver), None) = (m, uri, ver, parts.next()) else {
            return Err(ParseError::StartLine(first_line.to_string()));
        };
        // §25.1: no LWS inside the Request-URI and no name-addr brackets around it.
        if !is_token(m) || uri.is_empty() || uri.contains(['<', '>']) || ver != "SIP/2.0" {
            return Err(ParseError::StartLine(first_line.to_string()));
        }
        method_token = Some(m.to_string());
        if m.parse::<Method>().is_ok() && m.bytes().all(|b| b.is_ascii_uppercase()) {
            rsipstack::sip::parser::parse_message(head)
        } else {
            // An extension method (or a known one in another case: methods are case-sensitive,
            // §7.1). Parse the rest with a placeholder method; the real token is kept above.
            let mut patched = Vec::with_capacity(head.len() + 8);
            patched.extend_from_slice(b"INFO");
            patched.extend_from_slice(&head[m.len()..]);
            rsipstack::sip::parser::parse_message(&patched)
        }
    };
    let mut msg = parsed.map_err(|e| ParseError::StartLine(e.to_string()))?;
    match &mut msg {
        SipMessage::Request(r) => r.body = body.clone(),
        SipMessage::Response(r) => r.body = body.clone(),
    }
    validate(msg, method_token, body)
}

fn header_err(name: &'static str, why: impl Into<String>) -> ParseError {
    ParseError::Header {
        name,
        why: why.into(),
    }
}

/// The headers that may appear once only (RFC 3261 §7.3.1: only comma-list headers repeat),
/// in the order their counts are kept.
const SINGLE_HEADERS: [&str; 5] = ["Call-ID", "CSeq", "From", "To", "Max-Forwards"];

fn check_single(counts: [u32; 5]) -> Result<(), ParseError> {
    for (name, n) in SINGLE_HEADERS.into_iter().zip(counts) {
        if n > 1 {
            return Err(header_err(name, format!("appears {n} times")));
        }
    }
    Ok(())
}

fn check_call_id(value: &str) -> Result<&str, ParseError> {
    let call_id = trim_ws(value);
    if call_id.is_empty() || call_id.bytes().any(|b| b.is_ascii_whitespace()) {
        return Err(header_err("Call-ID", format!("invalid value {call_id:?}")));
    }
    Ok(call_id)
}

/// `CSeq: <number> <method>` (§20.16), the method matching the request's when there is one.
fn check_cseq<'a>(value: &'a str, method: Option<&str>) -> Result<(u32, &'a str), ParseError> {
    // The usual form, `digits SP token`, read in one pass; anything else (and every error)
    // by the general reading below.
    let b = value.as_bytes();
    let digits = b.iter().take_while(|c| c.is_ascii_digit()).count();
    if (1..=10).contains(&digits) && b.get(digits) == Some(&b' ') {
        let n = b[..digits]
            .iter()
            .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
        let m = &value[digits + 1..];
        if n < (1 << 31) && is_token(m) && method.is_none_or(|r| r == m) {
            return Ok((n as u32, m));
        }
    }
    let mut it = value.split_ascii_whitespace();
    let (Some(num), Some(cseq_method), None) = (it.next(), it.next(), it.next()) else {
        return Err(header_err("CSeq", format!("invalid value {value:?}")));
    };
    let cseq: u32 = num
        .parse()
        .ok()
        .filter(|n| *n < (1 << 31))
        .ok_or_else(|| header_err("CSeq", format!("invalid sequence number {num:?}")))?;
    if !is_token(cseq_method) {
        return Err(header_err(
            "CSeq",
            format!("invalid method {cseq_method:?}"),
        ));
    }
    if let Some(m) = method
        && m != cseq_method
    {
        return Err(header_err(
            "CSeq",
            format!("method {cseq_method} does not match request method {m}"),
        ));
    }
    Ok((cseq, cseq_method))
}

fn check_status(code: u16) -> Result<u16, ParseError> {
    if !(100..=699).contains(&code) {
        return Err(ParseError::StartLine(format!("status code {code}")));
    }
    Ok(code)
}

fn validate(msg: SipMessage, method: Option<String>, body: Vec<u8>) -> Result<Inbound, ParseError> {
    let mut counts = [0u32; 5];
    for h in msg.headers().iter() {
        match h {
            Header::CallId(_) => counts[0] += 1,
            Header::CSeq(_) => counts[1] += 1,
            Header::From(_) => counts[2] += 1,
            Header::To(_) => counts[3] += 1,
            Header::MaxForwards(_) => counts[4] += 1,
            _ => {}
        }
    }
    check_single(counts)?;
    let call_id = check_call_id(
        msg.call_id_header()
            .map_err(|_| header_err("Call-ID", "missing"))?
            .value(),
    )?;
    let (cseq, cseq_method) = check_cseq(
        msg.cseq_header()
            .map_err(|_| header_err("CSeq", "missing"))?
            .value(),
        method.as_deref(),
    )?;

    let via = msg
        .top_via_header()
        .and_then(|v| v.typed())
        .map_err(|e| header_err("Via", e.to_string()))?;
    let branch = via.branch().map(|b| b.to_string());

    let from_tag = tag_of(
        msg.from_header()
            .map_err(|_| header_err("From", "missing"))?
            .value(),
    )
    .map_err(|why| header_err("From", why))?;
    let to_tag = tag_of(
        msg.to_header()
            .map_err(|_| header_err("To", "missing"))?
            .value(),
    )
    .map_err(|why| header_err("To", why))?;

    let status = match &msg {
        SipMessage::Response(r) => Some(check_status(r.status_code.code())?),
        SipMessage::Request(_) => None,
    };

    // The values live in `msg`'s headers: all are appended to the text.
    let fields = Fields {
        call_id,
        cseq_method,
        branch: branch.as_deref(),
        from_tag: from_tag.as_deref(),
        to_tag: to_tag.as_deref(),
    };
    let (text, spans) = fields.into_text("");
    Ok(Inbound {
        msg: std::sync::OnceLock::from(msg),
        text,
        head_len: 0,
        body,
        method,
        status,
        cseq,
        call_id: spans.call_id,
        cseq_method: spans.cseq_method,
        branch: spans.branch,
        from_tag: spans.from_tag,
        to_tag: spans.to_tag,
    })
}

/// The field values of an [`Inbound`], before they are put in its text.
struct Fields<'a> {
    call_id: &'a str,
    cseq_method: &'a str,
    branch: Option<&'a str>,
    from_tag: Option<&'a str>,
    to_tag: Option<&'a str>,
}

/// Where each of [`Fields`] is in the text.
struct FieldSpans {
    call_id: Span,
    cseq_method: Span,
    branch: Option<Span>,
    from_tag: Option<Span>,
    to_tag: Option<Span>,
}

impl Fields<'_> {
    /// The text (`head`, then the values not inside it) and each value's span in it.
    /// Values inside `head` are recorded by their offset, without a copy; the others are
    /// appended after it.
    fn into_text(self, head: &str) -> (Box<str>, FieldSpans) {
        let values = [
            Some(self.call_id),
            Some(self.cseq_method),
            self.branch,
            self.from_tag,
            self.to_tag,
        ];
        let extra: usize = values
            .iter()
            .flatten()
            .filter(|v| offset_in(head, v).is_none())
            .map(|v| v.len())
            .sum();
        let mut text = String::with_capacity(head.len() + extra);
        text.push_str(head);
        let mut span = |value: &str| {
            let start = offset_in(head, value).unwrap_or_else(|| {
                text.push_str(value);
                text.len() - value.len()
            });
            // Messages are bounded far below 4 GiB (a datagram, or `StreamFramer`'s limits).
            Span {
                start: start as u32,
                end: (start + value.len()) as u32,
            }
        };
        let spans = FieldSpans {
            call_id: span(self.call_id),
            cseq_method: span(self.cseq_method),
            branch: self.branch.map(&mut span),
            from_tag: self.from_tag.map(&mut span),
            to_tag: self.to_tag.map(&mut span),
        };
        (text.into_boxed_str(), spans)
    }
}

/// What one pass over a response's header lines found (values trimmed, as rsipstack's parser
/// trims them).
struct ScannedResponse<'a> {
    status: u16,
    counts: [u32; 5],
    call_id: Option<&'a str>,
    cseq: Option<&'a str>,
    from: Option<&'a str>,
    to: Option<&'a str>,
    /// The first Via header's value.
    via: Option<&'a str>,
    /// `Content-Length` (or `l`), checked as [`frame`] checks it.
    content_length: Option<usize>,
}

/// Reads a response's Status-Line and the headers the match needs in one pass over the header
/// lines, splitting them as rsipstack's parser does (at LF with an optional CR before it; a
/// line without a colon skipped; names case-insensitive, compact forms of §7.3.3). Returns
/// `Ok(None)` for what it leaves to the full parse: a folded header line (§7.3.1) or a quoted
/// string in the top Via.
///
/// Errors: the Status-Line's code as rsipstack reads it (digits up to the next SP/HT, a
/// `u16`) outside 100–699 or unreadable.
fn scan_response<'a>(
    head: &'a str,
    first_line: &str,
) -> Result<Option<ScannedResponse<'a>>, ParseError> {
    // The fields past the five of `SINGLE_HEADERS` the scan tells apart.
    const VIA: usize = 5;
    const CONTENT_LENGTH: usize = 6;
    let rest = &first_line["SIP/2.0 ".len()..];
    let code_str = rest.split([' ', '\t']).next().unwrap_or("");
    let status = code_str
        .parse::<u16>()
        .map_err(|_| ParseError::StartLine(first_line.to_string()))?;
    let mut s = ScannedResponse {
        status: check_status(status)?,
        counts: [0; 5],
        call_id: None,
        cseq: None,
        from: None,
        to: None,
        via: None,
        content_length: None,
    };
    let mut lines = header_lines(head).skip(1);
    for line in lines.by_ref() {
        if line.is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            return Ok(None);
        }
        // The headers read here start with one of these letters; a line starting with anything
        // else but a letter (a form feed, say: the name is trimmed as Unicode white space) is
        // read in full.
        let first = line.as_bytes()[0];
        if first.is_ascii_alphabetic()
            && !matches!(first | 0x20, b'v' | b'c' | b'i' | b'f' | b't' | b'm' | b'l')
        {
            continue;
        }
        let Some(colon) = memchr::memchr(b':', line.as_bytes()) else {
            continue;
        };
        let (name, value) = (trim_ws(&line[..colon]), &line[colon + 1..]);
        // Names told apart by their length first, then compared without case (§7.3.1).
        let is = |full: &str| name.eq_ignore_ascii_case(full);
        let field = match name.len() {
            1 => match name.as_bytes()[0] | 0x20 {
                b'v' => VIA,
                b'i' => 0,
                b'f' => 2,
                b't' => 3,
                b'l' => CONTENT_LENGTH,
                _ => continue,
            },
            2 if is("To") => 3,
            3 if is("Via") => VIA,
            4 if is("CSeq") => 1,
            4 if is("From") => 2,
            7 if is("Call-ID") => 0,
            12 if is("Max-Forwards") => 4,
            14 if is("Content-Length") => CONTENT_LENGTH,
            _ => continue,
        };
        if field == VIA {
            if s.via.is_none() {
                if value.contains('"') {
                    return Ok(None);
                }
                s.via = Some(trim_ws(value));
            }
            continue;
        }
        if field == CONTENT_LENGTH {
            // Named as [`frame`] names it (ASCII trim), so both framings agree: the name
            // matched after `trim_ws`, which takes what the ASCII trim takes and perhaps
            // more (VT, Unicode spaces), so the two agree when they cut the same length.
            if trim_ascii(&line.as_bytes()[..colon]).len() == name.len() {
                s.content_length = Some(content_length_value(
                    trim_ascii(value.as_bytes()),
                    s.content_length,
                )?);
            }
            continue;
        }
        s.counts[field] += 1;
        let slot = match field {
            0 => &mut s.call_id,
            1 => &mut s.cseq,
            2 => &mut s.from,
            3 => &mut s.to,
            _ => continue,
        };
        slot.get_or_insert(trim_ws(value));
    }
    // An empty line before CRLF CRLF (a bare LF): [`frame`] reads on past it; so does the
    // full parse. Several bare LFs in a row may come before the next header line.
    if lines.any(|l| !l.is_empty()) {
        return Ok(None);
    }
    Ok(Some(s))
}

impl ScannedResponse<'_> {
    /// The same checks [`validate`] makes on a parsed message, in the same order.
    fn into_inbound(self, head: &str, body: Vec<u8>) -> Result<Inbound, ParseError> {
        check_single(self.counts)?;
        let call_id = check_call_id(
            self.call_id
                .ok_or_else(|| header_err("Call-ID", "missing"))?,
        )?;
        let (cseq, cseq_method) = check_cseq(
            self.cseq.ok_or_else(|| header_err("CSeq", "missing"))?,
            None,
        )?;
        let via = self.via.ok_or_else(|| header_err("Via", "missing"))?;
        // The top via-parm: the first value of the first Via header, as rsipstack's
        // `top_via_header` cuts it (at the first comma; a quoted string went to the full parse).
        let via = trim_ws(split_byte(via, b',').next().unwrap_or(""));
        if via.is_empty() {
            return Err(header_err("Via", "empty Via header value"));
        }
        // What the light reading refuses goes to rsipstack's typed Via, which decides as it
        // does for the full parse (it is more lenient about the sent-protocol).
        let branch = match via_branch(via) {
            Ok(b) => b,
            Err(_) => rsipstack::sip::headers::Via::new(via.to_string())
                .typed()
                .map_err(|e| header_err("Via", e.to_string()))?
                .branch()
                .map(|b| Cow::Owned(b.to_string())),
        };
        let from_tag = tag_of(self.from.ok_or_else(|| header_err("From", "missing"))?)
            .map_err(|why| header_err("From", why))?;
        let to_tag = tag_of(self.to.ok_or_else(|| header_err("To", "missing"))?)
            .map_err(|why| header_err("To", why))?;
        // The values are slices of `head` (kept for the lazy parse) but for a branch or tag
        // the general readings rebuilt: one copy of the header section holds them all.
        let fields = Fields {
            call_id,
            cseq_method,
            branch: branch.as_deref(),
            from_tag: from_tag.as_deref(),
            to_tag: to_tag.as_deref(),
        };
        let (text, spans) = fields.into_text(head);
        Ok(Inbound {
            msg: std::sync::OnceLock::new(),
            text,
            head_len: head.len(),
            body,
            method: None,
            status: Some(self.status),
            cseq,
            call_id: spans.call_id,
            cseq_method: spans.cseq_method,
            branch: spans.branch,
            from_tag: spans.from_tag,
            to_tag: spans.to_tag,
        })
    }
}

/// The `branch` of one via-parm (RFC 3261 §20.42: `SIP/2.0/UDP host[:port];branch=z9hG4bK…`,
/// already cut from the rest of its Via value), checking its sent-protocol and that a sent-by
/// follows. Errors name what is missing.
///
/// The via-parm as far ends write it (`SIP/2.0/` in capitals, one space, no white space
/// inside the parameters) is read by [`via_branch_plain`] in one pass; anything else, and
/// every error, by the general reading [`via_branch_general`]. A test holds the two to the
/// same answers.
fn via_branch(value: &str) -> Result<Option<Cow<'_, str>>, String> {
    plain_or_general(via_branch_plain(value), || via_branch_general(value))
}

/// The answer of a one-pass reading when it has one (borrowed from the value), else the
/// general reading's (owned).
fn plain_or_general<'a>(
    plain: Option<Option<&'a str>>,
    general: impl FnOnce() -> Result<Option<String>, String>,
) -> Result<Option<Cow<'a, str>>, String> {
    match plain {
        Some(found) => Ok(found.map(Cow::Borrowed)),
        None => Ok(general()?.map(Cow::Owned)),
    }
}

/// What [`plain_param`] found.
enum PlainParam<'a> {
    /// No parameter of that name.
    Absent,
    /// The parameter, with the text after its `=` (`None` without one), untrimmed.
    Found(Option<&'a str>),
}

/// The parameter called `name` (any case) among the `;`-separated pieces of `value` from byte
/// `start` on (the first piece runs from `start` to the first `;`), split as the general
/// readings split them. `None` when a piece's name has white space or non-ASCII at an end,
/// which a trim could turn into `name`: the general reading decides then.
fn plain_param<'a>(value: &'a str, mut start: usize, name: &str) -> Option<PlainParam<'a>> {
    let b = value.as_bytes();
    loop {
        let end = b[start..]
            .iter()
            .position(|&c| c == b';')
            .map_or(b.len(), |j| start + j);
        let piece = &b[start..end];
        let eq = piece.iter().position(|&c| c == b'=');
        let key = &piece[..eq.unwrap_or(piece.len())];
        if key.len() == name.len() {
            if key.eq_ignore_ascii_case(name.as_bytes()) {
                return Some(PlainParam::Found(eq.map(|e| &value[start + e + 1..end])));
            }
        } else if key.first().is_some_and(|&c| !is_plain(c))
            || key.last().is_some_and(|&c| !is_plain(c))
        {
            return None;
        }
        if end == b.len() {
            return Some(PlainParam::Absent);
        }
        start = end + 1;
    }
}

/// [`via_branch`] for the plain form only: `None` when the general reading must decide.
fn via_branch_plain(value: &str) -> Option<Option<&str>> {
    let b = value.as_bytes();
    let rest = b.strip_prefix(b"SIP/2.0/")?;
    // The transport: a token ended by one SP (a token holds no white space and no '/').
    let sp = rest.iter().position(|&c| !TOKEN_BYTES[usize::from(c)])?;
    if sp == 0 || rest[sp] != b' ' {
        return None;
    }
    let after = 8 + sp + 1;
    // The sent-by: up to the first ';', starting with a byte no trim removes.
    let semi = b[after..]
        .iter()
        .position(|&c| c == b';')
        .map(|i| after + i);
    if !b.get(after).is_some_and(|&c| is_plain(c) && c != b';') {
        return None;
    }
    let Some(semi) = semi else {
        return Some(None);
    };
    // The parameters: `;name[=value]` each.
    match plain_param(value, semi + 1, "branch")? {
        PlainParam::Absent => Some(None),
        PlainParam::Found(Some(v)) if is_token(v) => Some(Some(v)),
        PlainParam::Found(_) => None,
    }
}

/// The general reading behind [`via_branch`].
fn via_branch_general(value: &str) -> Result<Option<String>, String> {
    let mut parts = split_byte(value, b';');
    let sent = parts.next().unwrap_or("");
    let Some((proto, (ver, rest))) =
        split_once_byte(sent, b'/').and_then(|(p, after)| Some((p, split_once_byte(after, b'/')?)))
    else {
        return Err(format!("no sent-protocol in {value:?}"));
    };
    if !trim_ws(proto).eq_ignore_ascii_case("SIP") || trim_ws(ver) != "2.0" {
        return Err(format!("not SIP/2.0: {value:?}"));
    }
    let Some((transport, sent_by)) = trim_ws(rest).split_once(char::is_whitespace) else {
        return Err(format!("no sent-by in {value:?}"));
    };
    if !is_token(transport) || trim_ws(sent_by).is_empty() {
        return Err(format!("bad transport or sent-by in {value:?}"));
    }
    for p in parts {
        let (k, v) = split_once_byte(p, b'=').unwrap_or((p, ""));
        if trim_ws(k).eq_ignore_ascii_case("branch") {
            // Only a plain `branch=token` is read here; an empty one, or white space around
            // the name or the value, is left to rsipstack's reading, which decides what it is.
            if k.len() != "branch".len() || v.is_empty() || !is_token(v) {
                return Err(format!("unusual branch in {value:?}"));
            }
            return Ok(Some(v.to_string()));
        }
    }
    Ok(None)
}

/// The `tag` parameter of a From/To value (`"Name" <sip:a@b;uri-param>;tag=x`), read
/// without parsing the URI: quoted display names (with `\"` escapes) and `<...>` are skipped so
/// a `;tag=` inside them does not count. Errors: unbalanced quotes or brackets, an empty value,
/// or an empty tag.
///
/// The usual form (no white space around the parameters) is read by [`tag_of_plain`] in one
/// pass; anything else, and every error, by [`tag_of_general`]. A test holds the two to the
/// same answers.
fn tag_of(value: &str) -> Result<Option<Cow<'_, str>>, String> {
    plain_or_general(tag_of_plain(value), || tag_of_general(value))
}

/// [`tag_of`] for the usual form only: `None` when the general reading must decide.
fn tag_of_plain(value: &str) -> Option<Option<&str>> {
    let b = value.as_bytes();
    // Nothing for a trim to take at either end.
    if !is_plain(*b.first()?) || !is_plain(*b.last()?) {
        return None;
    }
    let mut i = 0;
    if b[0] == b'"' {
        i = 1;
        loop {
            match b.get(i)? {
                b'\\' => i += 2,
                b'"' => {
                    i += 1;
                    break;
                }
                _ => i += 1,
            }
        }
    }
    let params = match memchr::memchr(b'<', &b[i..]) {
        Some(open) => i + open + memchr::memchr(b'>', &b[i + open..])? + 1,
        None if i > 0 => return None,
        None => memchr::memchr(b';', &b[i..]).map_or(b.len(), |p| i + p),
    };
    // As the general reading splits them: the text before the first ';' is a piece too.
    match plain_param(value, params, "tag")? {
        PlainParam::Absent => Some(None),
        PlainParam::Found(Some(v))
            if v.bytes().next().is_some_and(is_plain) && v.bytes().last().is_some_and(is_plain) =>
        {
            Some(Some(v))
        }
        PlainParam::Found(_) => None,
    }
}

/// The general reading behind [`tag_of`].
fn tag_of_general(value: &str) -> Result<Option<String>, String> {
    let v = trim_ws(value);
    if v.is_empty() {
        return Err("empty value".into());
    }
    let bytes = v.as_bytes();
    let mut i = 0;
    // Skip a quoted display name.
    if bytes[0] == b'"' {
        i = 1;
        loop {
            match bytes.get(i) {
                None => return Err("unterminated quoted display name".into()),
                Some(b'\\') => i += 2,
                Some(b'"') => {
                    i += 1;
                    break;
                }
                Some(_) => i += 1,
            }
        }
    }
    let rest = &v[i..];
    let params = match find_byte(rest, b'<') {
        Some(open) => match find_byte(&rest[open..], b'>') {
            Some(close) => &rest[open + close + 1..],
            None => return Err("unbalanced <".into()),
        },
        None if i > 0 => return Err("display name without <URI>".into()),
        // addr-spec form: header parameters start at the first ';' (RFC 3261 §20.10).
        None => find_byte(rest, b';').map_or("", |p| &rest[p..]),
    };
    for p in split_byte(params, b';') {
        let (k, val) = split_once_byte(p, b'=').unwrap_or((p, ""));
        if trim_ws(k).eq_ignore_ascii_case("tag") {
            let val = trim_ws(val);
            if val.is_empty() {
                return Err("empty tag".into());
            }
            return Ok(Some(val.to_string()));
        }
    }
    Ok(None)
}

/// The first index of an ASCII byte in `s` (a plain loop: the strings here are short, where
/// a vectorised search costs more to set up than it saves).
fn find_byte(s: &str, b: u8) -> Option<usize> {
    s.bytes().position(|c| c == b)
}

/// `s` split at an ASCII byte, as `str::split` with that char.
fn split_byte(s: &str, sep: u8) -> impl Iterator<Item = &str> {
    let mut rest = Some(s);
    std::iter::from_fn(move || {
        let r = rest?;
        match find_byte(r, sep) {
            Some(i) => {
                rest = Some(&r[i + 1..]);
                Some(&r[..i])
            }
            None => {
                rest = None;
                Some(r)
            }
        }
    })
}

/// `str::split_once` at an ASCII byte.
fn split_once_byte(s: &str, sep: u8) -> Option<(&str, &str)> {
    find_byte(s, sep).map(|i| (&s[..i], &s[i + 1..]))
}

/// `str::trim` (Unicode white space), by the ASCII trim when the ends are plain ASCII.
fn trim_ws(s: &str) -> &str {
    let t = s.trim_ascii();
    match (t.as_bytes().first(), t.as_bytes().last()) {
        (Some(&f), Some(&l)) if f >= 0x80 || l >= 0x80 || f == 0x0b || l == 0x0b => t.trim(),
        _ => t,
    }
}

/// Looks like a request (so a parse failure deserves an answer rather than silence)?
/// True when the first line does not start with `SIP/` and ends with `SIP/<major>.<minor>`.
pub fn looks_like_request(buf: &[u8]) -> bool {
    request_version(buf).is_some()
}

/// The `SIP/x.y` version at the end of a request line, if the first line is one.
fn request_version(buf: &[u8]) -> Option<&[u8]> {
    let buf = strip_leading_crlf(buf);
    let line_end = memchr::memchr(b'\n', buf).unwrap_or(buf.len());
    let line = trim_ascii(&buf[..line_end]);
    if line.starts_with(b"SIP/") {
        return None;
    }
    let start = memchr::memrchr(b' ', line)? + 1;
    let ver = &line[start..];
    let digits = ver.strip_prefix(b"SIP/")?;
    let ok = !digits.is_empty()
        && digits.iter().all(|b| b.is_ascii_digit() || *b == b'.')
        && digits.iter().filter(|b| **b == b'.').count() == 1;
    ok.then_some(ver)
}

/// The status code to answer a request that failed to parse with: 505 Version Not Supported
/// for a SIP version other than 2.0 (RFC 3261 §21.5.20), else 400.
pub fn rejection_code(buf: &[u8]) -> u16 {
    match request_version(buf) {
        Some(v) if v != b"SIP/2.0" => 505,
        _ => 400,
    }
}

/// Builds a minimal `400 Bad Request` (or `505 Version Not Supported`, see
/// [`rejection_code`]) for a request that failed validation, copying whatever
/// Via/From/To/Call-ID/CSeq lines can be found verbatim (RFC 3261 §8.2.6.1 needs them to route
/// the response back). Returns `None` when there is no Via line to route it by.
pub fn bad_request_response(buf: &[u8], why: &str) -> Option<Vec<u8>> {
    let code = rejection_code(buf);
    let buf = strip_leading_crlf(buf);
    let end = header_end(buf).unwrap_or(buf.len());
    let head = String::from_utf8_lossy(&buf[..end]);
    let mut out = match code {
        505 => String::from("SIP/2.0 505 Version Not Supported\r\n"),
        _ => String::from("SIP/2.0 400 Bad Request\r\n"),
    };
    let mut has_via = false;
    for line in head.split("\r\n").skip(1) {
        let Some((name, _)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim().to_ascii_lowercase();
        if matches!(
            name.as_str(),
            "via" | "v" | "from" | "f" | "to" | "t" | "call-id" | "i" | "cseq"
        ) && !line.starts_with([' ', '\t'])
        {
            has_via |= name == "via" || name == "v";
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    if !has_via {
        return None;
    }
    let why: String = why
        .chars()
        .filter(|c| !c.is_control() && *c != '"')
        .take(120)
        .collect();
    out.push_str(&format!(
        "Warning: 399 outdial \"{why}\"\r\nContent-Length: 0\r\n\r\n"
    ));
    Some(out.into_bytes())
}

/// Cuts SIP messages out of a TCP byte stream by `Content-Length` (RFC 3261 §18.3).
///
/// Feed it whatever the socket returned with [`StreamFramer::push`], then take complete
/// messages with [`StreamFramer::next_message`]. CRLF keep-alives between messages are
/// skipped. A header section larger than [`StreamFramer::MAX_HEADER`] bytes, or a malformed
/// `Content-Length`, is a framing error after which the connection must be closed (there is no
/// way to find the next message boundary).
#[derive(Debug, Default)]
pub struct StreamFramer {
    buf: Vec<u8>,
}

impl StreamFramer {
    /// Largest header section accepted, in bytes.
    pub const MAX_HEADER: usize = 64 * 1024;
    /// Largest body accepted, in bytes.
    pub const MAX_BODY: usize = 1024 * 1024;

    /// A framer with an empty buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends bytes read from the stream.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next complete message, `Ok(None)` when more bytes are needed, or a framing error.
    pub fn next_message(&mut self) -> Result<Option<Vec<u8>>, ParseError> {
        let skip = self
            .buf
            .iter()
            .take_while(|b| **b == b'\r' || **b == b'\n')
            .count();
        if skip > 0 {
            self.buf.drain(..skip);
        }
        if self.buf.is_empty() {
            return Ok(None);
        }
        let f = match frame(&self.buf) {
            Ok(f) => f,
            Err(ParseError::NoHeaderEnd) => {
                if self.buf.len() > Self::MAX_HEADER {
                    return Err(ParseError::NoHeaderEnd);
                }
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        // RFC 3261 §18.3: Content-Length MUST be present on streams; treat absence as 0.
        let len = f.content_length.unwrap_or(0);
        if len > Self::MAX_BODY {
            return Err(ParseError::BadContentLength(len.to_string()));
        }
        let total = f.body_start + len;
        if self.buf.len() < total {
            return Ok(None);
        }
        let rest = self.buf.split_off(total);
        let msg = std::mem::replace(&mut self.buf, rest);
        Ok(Some(msg))
    }
}

/// Where the sans-IO cores draw their random values from — tags, branches, Call-IDs, cnonces,
/// nonce keys, SDP session ids, RTP SSRCs: a ChaCha12 stream (`rand`'s `StdRng`, a CSPRNG)
/// seeded by the shell from the operating system, or by a test with a fixed seed so a run can
/// be replayed. Each call leg gets its own stream forked from the engine's ([`Tokens::fork`]).
#[derive(Debug)]
pub struct Tokens(rand::rngs::StdRng);

impl Tokens {
    /// A stream from a 32-byte seed.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        use rand::SeedableRng;
        Self(rand::rngs::StdRng::from_seed(seed))
    }

    /// A stream from a 64-bit seed (tests, replays).
    pub fn seeded(seed: u64) -> Self {
        use rand::SeedableRng;
        Self(rand::rngs::StdRng::seed_from_u64(seed))
    }

    /// A new independent stream seeded from this one.
    pub fn fork(&mut self) -> Self {
        use rand::SeedableRng;
        Self(rand::rngs::StdRng::from_rng(&mut self.0))
    }

    /// 64 random bits.
    pub fn u64(&mut self) -> u64 {
        use rand::Rng;
        self.0.next_u64()
    }

    /// A new random Call-ID: `<24 hex digits>@outdial` (RFC 3261 §8.1.1.4: globally unique).
    pub fn call_id(&mut self) -> String {
        format!("{}@outdial", self.token(24))
    }

    /// A new random token of `n` lowercase hex digits (tags, Call-IDs, branches).
    pub fn token(&mut self, n: usize) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut s = String::with_capacity(n);
        let mut bits: u64 = 0;
        for i in 0..n {
            if i % 16 == 0 {
                bits = self.u64();
            }
            s.push(HEX[(bits & 0xf) as usize] as char);
            bits >>= 4;
        }
        s
    }

    /// A new branch parameter with the RFC 3261 magic cookie `z9hG4bK` (§8.1.1.7).
    pub fn branch(&mut self) -> String {
        format!("z9hG4bK{}", self.token(20))
    }
}

/// Parses a SIP URI (`sip:+15550100@10.0.0.1:5060;transport=tcp`). Errors: the library's
/// message for a malformed URI.
pub fn parse_uri(s: &str) -> Result<Uri, String> {
    rsipstack::sip::uri::parse_uri(s).map_err(|e| e.to_string())
}

/// The host (as written, IPv6 in brackets) and port (5060 when absent) of a SIP URI.
pub fn host_port(uri: &Uri) -> (String, u16) {
    let host = uri.host_with_port.host.to_string();
    let port = uri
        .host_with_port
        .port
        .map(|p| p.value().to_owned())
        .unwrap_or(5060);
    (host, port)
}

/// Parses a Request-URI we built ourselves; a malformed one (which validation upstream should
/// have refused) becomes `sip:invalid.invalid`, so the request still goes out and the far end
/// answers it with an error the call records, instead of the engine failing.
pub fn parse_uri_or_invalid(s: &str) -> Uri {
    parse_uri(s).unwrap_or_else(|_| parse_uri("sip:invalid.invalid").expect("static URI"))
}

/// Serialises a request built by the call layer: the bytes rsipstack's `Request::to_bytes`
/// gives (start line, each header as its `Display` writes it, CRLF, body verbatim), written
/// into one buffer — rsipstack's own writer renders every header into a `String` of its own,
/// joins them and formats the result again, which was two fifths of starting a call
/// (docs/benchmarks.md). `uri` is the Request-URI: a typed `Uri`, or a URI text already
/// checked (a dialog's remote target as received, §12.2.1.1), written as it is.
pub fn request_bytes(
    method: Method,
    uri: impl fmt::Display,
    headers: &[Header],
    body: &[u8],
) -> Vec<u8> {
    message_bytes(
        format_args!("{method} {uri} {}", Version::V2),
        headers,
        body,
    )
}

/// A SIP message on the wire from its start line (without CRLF), headers and body, byte for
/// byte as rsipstack's `to_bytes` writes it.
fn message_bytes(start_line: std::fmt::Arguments<'_>, headers: &[Header], body: &[u8]) -> Vec<u8> {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(256 + 96 * headers.len() + body.len());
    // Writing into a String cannot fail.
    let _ = s.write_fmt(start_line);
    s.push_str("\r\n");
    for h in headers {
        let _ = write!(s, "{h}\r\n");
    }
    s.push_str("\r\n");
    let mut bytes = s.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// Builds a response to `req` (RFC 3261 §8.2.6.2): Via, From, Call-ID and CSeq copied, To
/// copied with `to_tag` added when the request's To has none, then `extra` headers and body.
/// `Content-Length` is always written.
pub fn response_to(
    req: &Inbound,
    code: u16,
    to_tag: Option<&str>,
    extra: Vec<Header>,
    body: Vec<u8>,
) -> Vec<u8> {
    let mut headers = Vec::with_capacity(8 + extra.len());
    for h in req.msg().headers().iter() {
        match h {
            Header::Via(_) | Header::From(_) | Header::CallId(_) | Header::CSeq(_) => {
                headers.push(h.clone())
            }
            Header::To(to) => {
                let v = to.value();
                if req.to_tag.is_none()
                    && let Some(tag) = to_tag
                {
                    headers.push(Header::To(rsipstack::sip::To::new(format!(
                        "{v};tag={tag}"
                    ))));
                } else {
                    headers.push(h.clone());
                }
            }
            _ => {}
        }
    }
    headers.extend(extra);
    headers.push(Header::ContentLength(rsipstack::sip::ContentLength::new(
        body.len().to_string(),
    )));
    response_bytes(code, &headers, &body)
}

/// A response on the wire: `SIP/2.0 <code> <standard reason phrase>`, then [`message_bytes`].
fn response_bytes(code: u16, headers: &[Header], body: &[u8]) -> Vec<u8> {
    let status = StatusCode::from(code);
    message_bytes(
        format_args!("{} {} {}", Version::V2, status.code(), status.text()),
        headers,
        body,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Our writer gives rsipstack's bytes: requests and responses, with and without headers
    /// and bodies (a binary one too), every header kind the call layer writes.
    #[test]
    fn messages_are_written_as_rsipstack_writes_them() {
        let ok = b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.1:5070;branch=z9hG4bK74bf9;rport=5070\r\n\
Record-Route: <sip:192.0.2.20;lr>\r\nFrom: \"Sales\" <sip:+14155550000@192.0.2.1>;tag=9fxced76sl\r\n\
To: <sip:+14155550123@192.0.2.10:5060>;tag=as5f2c1e7a\r\nCall-ID: 3848276298220188511@192.0.2.1\r\n\
CSeq: 1 INVITE\r\nContact: <sip:+14155550123@192.0.2.10:5060>\r\nX-Custom: a b\r\n\
Content-Type: application/sdp\r\nContent-Length: 4\r\n\r\n";
        let SipMessage::Response(resp) = rsipstack::sip::parser::parse_message(ok).unwrap() else {
            panic!("not a response")
        };
        let headers: Vec<Header> = resp.headers.iter().cloned().collect();
        for body in [Vec::new(), b"v=0\r\n".to_vec(), vec![0xff, 0x00, 0x80]] {
            for hs in [&headers[..], &headers[..1], &[]] {
                let uri = parse_uri("sip:+14155550123@192.0.2.10:5060;user=phone").unwrap();
                let ours = request_bytes(Method::Invite, &uri, hs, &body);
                let theirs = Request {
                    method: Method::Invite,
                    uri,
                    version: Version::V2,
                    headers: Headers::from(hs.to_vec()),
                    body: body.clone(),
                }
                .to_bytes();
                assert_eq!(
                    String::from_utf8_lossy(&ours),
                    String::from_utf8_lossy(&theirs)
                );
                assert_eq!(ours, theirs);
                for code in [180, 200, 404, 487, 603] {
                    let ours = response_bytes(code, hs, &body);
                    let theirs = Response {
                        status_code: StatusCode::from(code),
                        wire_reason: None,
                        version: Version::V2,
                        headers: Headers::from(hs.to_vec()),
                        body: body.clone(),
                    }
                    .to_bytes();
                    assert_eq!(ours, theirs, "{code}");
                }
            }
        }
    }

    const OK: &str = "SIP/2.0 200 OK\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKabc;rport=5070\r\n\
From: <sip:1000@127.0.0.1>;tag=f1\r\n\
To: <sip:+15550100@127.0.0.1>;tag=t1\r\n\
Call-ID: c1@x\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:127.0.0.1:5080>\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 4\r\n\r\nv=0\n";

    /// Both readings of a datagram: the scan (responses) and the full parse.
    fn both(buf: &[u8]) -> (Result<Inbound, ParseError>, Result<Inbound, ParseError>) {
        (parse_datagram(buf), parse_datagram_full(buf))
    }

    fn fields(m: &Inbound) -> String {
        format!(
            "{:?} {:?} {} {} {} {:?} {:?} {:?} {:?}",
            m.method,
            m.status,
            m.call_id(),
            m.cseq,
            m.cseq_method(),
            m.branch(),
            m.from_tag(),
            m.to_tag(),
            m.body()
        )
    }

    /// The scan and the full parse agree on every response: the same fields, or both reject
    /// it. `via_lenient`: a Via the scan accepts and rsipstack's typed Via rejects (the scan
    /// checks only the sent-protocol and that a sent-by follows) is allowed.
    fn assert_same(buf: &[u8]) {
        let (scan, full) = both(buf);
        match (&scan, &full) {
            (Ok(a), Ok(b)) => {
                assert_eq!(fields(a), fields(b), "{}", String::from_utf8_lossy(buf));
                // The lazy parse gives what the full parse gave.
                assert_eq!(a.msg().to_string(), b.msg().to_string());
                assert_eq!(a.reason_phrase(), b.reason_phrase());
                assert_eq!(a.q850_cause(), b.q850_cause());
            }
            (Err(_), Err(_)) => {}
            (Ok(_), Err(ParseError::Header { name: "Via", .. })) => {}
            _ => panic!(
                "scan {scan:?} / full {full:?} differ on\n{}",
                String::from_utf8_lossy(buf)
            ),
        }
    }

    fn fixtures(dir: &str) -> Vec<Vec<u8>> {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../sip-fixtures/messages")
            .join(dir);
        let mut v: Vec<_> = std::fs::read_dir(&p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            .map(|e| std::fs::read(e.unwrap().path()).unwrap())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn the_response_scan_agrees_with_the_full_parse_on_every_fixture() {
        let mut responses = 0;
        for buf in fixtures("valid").into_iter().chain(fixtures("invalid")) {
            if buf.starts_with(b"SIP/") {
                responses += 1;
                let folded = buf.windows(3).any(|w| w == b"\n  " || w == b"\n \t")
                    || buf.windows(2).any(|w| w == b"\n\t" || w == b"\n ");
                if let Ok(m) = parse_datagram(&buf) {
                    assert_eq!((m.head_len > 0), !folded, "scanned unless folded");
                }
            }
            assert_same(&buf);
        }
        assert!(responses >= 12, "{responses} response fixtures");
    }

    /// Every line of every response fixture removed, doubled, cut short, or its name or value
    /// emptied: the scan and the full parse still agree.
    #[test]
    fn the_response_scan_agrees_with_the_full_parse_on_mutated_responses() {
        let mut n = 0;
        for buf in fixtures("valid")
            .into_iter()
            .chain([OK.as_bytes().to_vec()])
        {
            if !buf.starts_with(b"SIP/") {
                continue;
            }
            let text = String::from_utf8_lossy(&buf).into_owned();
            let Some((head, body)) = text.split_once("\r\n\r\n") else {
                continue;
            };
            let lines: Vec<&str> = head.split("\r\n").collect();
            for i in 0..lines.len() {
                let line = lines[i];
                let colon = line.find(':').unwrap_or(line.len());
                let variants = [
                    None,
                    Some(format!("{line}\r\n{line}")),
                    Some(line[..line.len() / 2].to_string()),
                    Some(format!("{}:", &line[..colon])),
                    Some(format!(":{}", &line[(colon + 1).min(line.len())..])),
                    Some(line.replace(';', ";;")),
                    Some(line.replace(' ', "\t")),
                    Some(line.to_uppercase()),
                    Some(format!("\x0c{line}")),
                    Some(format!("{line}\n{line}")),
                ];
                for v in variants {
                    let mut l = lines.clone();
                    let owned;
                    match v {
                        None => {
                            l.remove(i);
                        }
                        Some(s) => {
                            owned = s;
                            l[i] = &owned;
                        }
                    }
                    let msg = format!("{}\r\n\r\n{body}", l.join("\r\n"));
                    assert_same(msg.as_bytes());
                    n += 1;
                }
            }
        }
        assert!(n > 500, "{n} mutations");
    }

    #[test]
    fn a_provisional_response_is_read_without_the_full_parse() {
        let ringing = OK.replace("200 OK", "180 Ringing");
        let m = parse_datagram(ringing.as_bytes()).unwrap();
        assert!(m.msg.get().is_none(), "not parsed yet");
        assert_eq!(
            (m.status, m.branch(), m.to_tag()),
            (Some(180), Some("z9hG4bKabc"), Some("t1"))
        );
        // Asked for, the rest is there.
        assert_eq!(m.header_values("Contact"), vec!["<sip:127.0.0.1:5080>"]);
        // A folded line goes to the full parse at once.
        let folded = ringing.replace("CSeq: 1 INVITE", "CSeq: 1\r\n INVITE");
        let m = parse_datagram(folded.as_bytes()).unwrap();
        assert!(m.msg.get().is_some());
        assert_eq!((m.cseq, m.cseq_method()), (1, "INVITE"));
    }

    #[test]
    fn fields_rebuilt_by_the_general_readings_sit_after_the_kept_header_section() {
        // White space around `tag` and `branch`: the general readings answer, and their values
        // go after the header section, which the lazy parse still reads whole.
        let raw = OK
            .replace(";tag=t1", " ; tag = t1")
            .replace(";branch=z9hG4bKabc", " ; branch=z9hG4bKabc");
        let m = parse_datagram(raw.as_bytes()).unwrap();
        assert!(m.head_len > 0, "read by the scan");
        assert_eq!(m.to_tag(), Some("t1"));
        assert_eq!(m.branch(), Some("z9hG4bKabc"));
        assert_eq!((m.call_id(), m.cseq_method()), ("c1@x", "INVITE"));
        assert!(m.text.len() > m.head_len, "the rebuilt values are appended");
        assert_eq!(m.header_values("Contact"), vec!["<sip:127.0.0.1:5080>"]);
        // A request's values come from rsipstack's parse and are all appended.
        let req = "BYE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP 1.2.3.4;branch=z9hG4bK9\r\n\
From: <sip:x@y>;tag=a1\r\nTo: <sip:a@b>;tag=b2\r\nCall-ID: q@h\r\nCSeq: 7 BYE\r\n\
Content-Length: 0\r\n\r\n";
        let r = parse_datagram(req.as_bytes()).unwrap();
        assert_eq!(r.head_len, 0);
        assert_eq!(
            (r.call_id(), r.cseq, r.cseq_method(), r.branch()),
            ("q@h", 7, "BYE", Some("z9hG4bK9"))
        );
        assert_eq!((r.from_tag(), r.to_tag()), (Some("a1"), Some("b2")));
    }

    #[test]
    fn parses_a_200_with_body() {
        let m = parse_datagram(OK.as_bytes()).unwrap();
        assert_eq!(m.status, Some(200));
        assert_eq!(m.call_id(), "c1@x");
        assert_eq!(m.cseq, 1);
        assert_eq!(m.cseq_method(), "INVITE");
        assert_eq!(m.branch(), Some("z9hG4bKabc"));
        assert_eq!(m.to_tag(), Some("t1"));
        assert_eq!(m.from_tag(), Some("f1"));
        assert_eq!(m.body(), b"v=0\n");
    }

    #[test]
    fn udp_without_content_length_takes_the_rest_of_the_datagram() {
        let raw = OK.replace("Content-Length: 4\r\n", "");
        let m = parse_datagram(raw.as_bytes()).unwrap();
        assert_eq!(m.body(), b"v=0\n");
    }

    #[test]
    fn udp_content_length_beyond_datagram_is_an_error() {
        let raw = OK.replace("Content-Length: 4", "Content-Length: 40");
        assert!(matches!(
            parse_datagram(raw.as_bytes()),
            Err(ParseError::TruncatedBody {
                declared: 40,
                available: 4
            })
        ));
    }

    #[test]
    fn bad_cseq_is_rejected_with_its_name() {
        let raw = OK.replace("CSeq: 1 INVITE", "CSeq: one INVITE");
        let e = parse_datagram(raw.as_bytes()).unwrap_err();
        assert!(matches!(e, ParseError::Header { name: "CSeq", .. }), "{e}");
    }

    #[test]
    fn extension_method_is_kept() {
        let raw = "NEWMETHOD sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP 1.2.3.4;branch=z9hG4bK1\r\n\
From: <sip:x@y>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: q\r\nCSeq: 3 NEWMETHOD\r\nContent-Length: 0\r\n\r\n";
        let m = parse_datagram(raw.as_bytes()).unwrap();
        assert_eq!(m.method.as_deref(), Some("NEWMETHOD"));
    }

    #[test]
    fn tags_are_read_without_parsing_uris() {
        assert_eq!(tag_of("<sip:a@b>;tag=x1").unwrap().as_deref(), Some("x1"));
        assert_eq!(tag_of("sip:a@b;tag=x2").unwrap().as_deref(), Some("x2"));
        assert_eq!(
            tag_of("\"a;tag=no <x>\" <sip:a@b;tag=no>; tag = y3")
                .unwrap()
                .as_deref(),
            Some("y3")
        );
        assert_eq!(tag_of("<sip:a@b;tag=inside>").unwrap(), None);
        assert!(tag_of("<sip:a@b").is_err());
        assert!(tag_of("\"open <sip:a@b>").is_err());
        assert!(tag_of("<sip:a@b>;tag=").is_err());
        assert!(tag_of("").is_err());
    }

    /// Pieces the plain and general readings of Via and From/To values are built from: the
    /// delimiters, white space of each kind (ASCII, VT, a Unicode space), names in any case.
    const PIECES: &[&str] = &[
        "SIP/2.0/",
        "sip/2.0/",
        "UDP",
        "TCP",
        " ",
        "\t",
        "\u{a0}",
        "\u{b}",
        "1.2.3.4:5060",
        ";",
        "=",
        "branch",
        "BRANCH",
        "tag",
        "TaG",
        "z9hG4bK1",
        "\"",
        "\\",
        "<",
        ">",
        "sip:a@b",
        ",",
        "x",
        "/",
        "2.0",
        "rport",
        "é",
        "@",
    ];

    fn built() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let head = proptest::sample::select(vec![
            "",
            "SIP/2.0/UDP 1.2.3.4",
            "SIP/2.0/TCP h;branch=z9hG4bKa",
            "\"A b\" <sip:a@b>",
            "<sip:a@b;tag=in>",
            "sip:a@b",
        ]);
        (
            head,
            proptest::collection::vec(proptest::sample::select(PIECES), 0..10),
        )
            .prop_map(|(h, rest)| format!("{h}{}", rest.concat()))
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(4000))]
        /// Where the one-pass readings answer, they answer as the general ones.
        #[test]
        fn plain_readings_agree_with_the_general_ones(v in built()) {
            if let Some(b) = via_branch_plain(&v) {
                proptest::prop_assert_eq!(via_branch_general(&v), Ok(b.map(str::to_string)), "{:?}", v);
            }
            if let Some(t) = tag_of_plain(&v) {
                proptest::prop_assert_eq!(tag_of_general(&v), Ok(t.map(str::to_string)), "{:?}", v);
            }
        }
    }

    #[test]
    fn plain_readings_take_the_usual_forms() {
        let via = "SIP/2.0/UDP 192.0.2.1:5070;branch=z9hG4bK74bf9;rport=5070";
        assert_eq!(via_branch_plain(via), Some(Some("z9hG4bK74bf9")));
        assert_eq!(via_branch_plain("SIP/2.0/TCP h:5060;rport"), Some(None));
        let from = "\"Sales\" <sip:+14155550000@192.0.2.1>;tag=9fxced76sl";
        assert_eq!(tag_of_plain(from), Some(Some("9fxced76sl")));
        assert_eq!(
            tag_of_plain("<sip:+14155550123@192.0.2.10:5060>"),
            Some(None)
        );
        assert_eq!(tag_of_plain("sip:a@b;tag=x2"), Some(Some("x2")));
        // Left to the general reading: white space in the parameters, errors.
        assert_eq!(tag_of_plain("<sip:a@b> ; tag = y"), None);
        assert_eq!(tag_of_plain("<sip:a@b>;tag="), None);
        assert_eq!(via_branch_plain("SIP/2.0/UDP h; branch=z"), None);
    }

    #[test]
    fn q850_reason_is_read() {
        assert_eq!(parse_q850("Q.850;cause=17;text=\"User busy\""), Some(17));
        assert_eq!(parse_q850("SIP;cause=200, Q.850 ; cause = 16"), Some(16));
        assert_eq!(parse_q850("SIP;cause=486"), None);
        assert_eq!(parse_q850("Q.850;cause=999"), None);
    }

    #[test]
    fn stream_framer_cuts_by_content_length() {
        let mut f = StreamFramer::new();
        let two = format!("\r\n\r\n{OK}{OK}");
        let bytes = two.as_bytes();
        f.push(&bytes[..50]);
        assert!(f.next_message().unwrap().is_none());
        f.push(&bytes[50..]);
        let a = f.next_message().unwrap().unwrap();
        let b = f.next_message().unwrap().unwrap();
        assert_eq!(a, OK.as_bytes());
        assert_eq!(b, OK.as_bytes());
        assert!(f.next_message().unwrap().is_none());
    }

    #[test]
    fn stream_framer_bounds_headers_and_bodies() {
        // A header section that never ends: a framing error past MAX_HEADER, not a buffer
        // that grows for ever.
        let mut f = StreamFramer::new();
        f.push(b"INVITE sip:a@b SIP/2.0\r\n");
        let line = b"X-Filler: 0123456789012345678901234567890123456789\r\n";
        while f.buf.len() <= StreamFramer::MAX_HEADER {
            assert!(f.next_message().unwrap().is_none());
            f.push(line);
        }
        assert!(matches!(f.next_message(), Err(ParseError::NoHeaderEnd)));
        // A Content-Length beyond MAX_BODY: refused before the body is read.
        let mut f = StreamFramer::new();
        let big = OK.replace(
            "Content-Length: 4",
            &format!("Content-Length: {}", StreamFramer::MAX_BODY + 1),
        );
        assert_ne!(big, OK, "the fixture has a Content-Length: 4");
        f.push(big.as_bytes());
        assert!(matches!(
            f.next_message(),
            Err(ParseError::BadContentLength(_))
        ));
    }

    #[test]
    fn response_reply_addr_follows_the_top_via() {
        let src: SocketAddr = "198.51.100.7:40000".parse().unwrap();
        let req = |via: &str| {
            parse_datagram(
                format!(
                    "BYE sip:a@b SIP/2.0\r\nVia: {via}\r\nFrom: <sip:x@y>;tag=1\r\n\
                     To: <sip:a@b>;tag=2\r\nCall-ID: q\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"
                )
                .as_bytes(),
            )
            .unwrap()
        };
        let at = |via: &str| response_reply_addr(&req(via), src).to_string();
        // RFC 3581: rport → the source port.
        assert_eq!(
            at("SIP/2.0/UDP 10.0.0.1:5062;branch=z9hG4bK1;rport"),
            "198.51.100.7:40000"
        );
        // §18.2.2: the source address (`received`) at the sent-by port, 5060 by default.
        assert_eq!(
            at("SIP/2.0/UDP 10.0.0.1:5062;branch=z9hG4bK1"),
            "198.51.100.7:5062"
        );
        assert_eq!(
            at("SIP/2.0/UDP proxy.example;branch=z9hG4bK1"),
            "198.51.100.7:5060"
        );
        assert_eq!(
            at("SIP/2.0/UDP [2001:db8::1]:5070;branch=z9hG4bK1"),
            "198.51.100.7:5070"
        );
        assert_eq!(
            at("SIP/2.0/UDP 10.0.0.1:5062;branch=z9hG4bK1, SIP/2.0/UDP 10.0.0.2:5064"),
            "198.51.100.7:5062"
        );
    }

    #[test]
    fn bad_request_copies_routing_headers() {
        let raw = "OPTIONS sip:a@b SIP/2.0\r\nv: SIP/2.0/UDP 1.2.3.4;branch=z9hG4bK1\r\n\
f: <sip:x@y>;tag=1\r\nt: <sip:a@b>\r\ni: q\r\nCSeq: x OPTIONS\r\n\r\n";
        let r = bad_request_response(raw.as_bytes(), "bad CSeq").unwrap();
        let text = String::from_utf8(r).unwrap();
        assert!(text.starts_with("SIP/2.0 400 Bad Request\r\n"));
        assert!(text.contains("v: SIP/2.0/UDP 1.2.3.4;branch=z9hG4bK1\r\n"));
        assert!(looks_like_request(raw.as_bytes()));
        assert!(!looks_like_request(OK.as_bytes()));
    }
}
