//! Dialog state (RFC 3261 §12) and the requests built inside a dialog.
//!
//! A dialog is identified by Call-ID, local tag and remote tag. The UAC creates it from a 2xx
//! (or a 1xx with a To-tag) to its INVITE (§12.1.2): the remote target is the response's
//! Contact, the route set is its Record-Route list in reverse order. Requests inside the
//! dialog (§12.2.1.1) are routed by that route set — loose routing when the first route has
//! `;lr`, strict routing otherwise — and carry our own CSeq, incremented per request. The far
//! end's CSeq is checked on each of its requests (§12.2.2).

use rsipstack::sip::{
    CSeq, CallId, ContentLength, From, HeadersExt, MaxForwards, Method, Route, To, UserAgent, Via,
};

use super::message::{Header, Inbound, Tokens, Transport, parse_uri, request_bytes};

/// The local side's fixed facts, shared by every request of a call.
#[derive(Debug, Clone)]
pub struct LocalParty {
    /// `host:port` written in Via sent-by and Contact (our advertised SIP address).
    pub sent_by: String,
    /// Transport of every request we send.
    pub transport: Transport,
    /// `User-Agent` header value.
    pub user_agent: String,
}

impl LocalParty {
    /// A Via header value with a fresh branch, and that branch. Adds `rport` (RFC 3581).
    pub fn via(&self, tokens: &mut Tokens) -> (String, String) {
        let branch = tokens.branch();
        (self.via_with_branch(&branch), branch)
    }

    /// Our Via header value with the given branch (and `rport`, RFC 3581).
    pub fn via_with_branch(&self, branch: &str) -> String {
        format!(
            "SIP/2.0/{} {};branch={branch};rport",
            self.transport.via_name(),
            self.sent_by
        )
    }

    /// Our Contact URI (`<sip:outdial@host:port;transport=tcp>`).
    pub fn contact(&self) -> String {
        match self.transport {
            Transport::Udp => format!("<sip:outdial@{}>", self.sent_by),
            Transport::Tcp => format!("<sip:outdial@{};transport=tcp>", self.sent_by),
        }
    }
}

/// A confirmed dialog: ours as UAC (an outbound call) or as UAS (an inbound call we answered).
#[derive(Debug, Clone)]
pub struct Dialog {
    /// Call-ID.
    pub call_id: String,
    /// Our tag (in From).
    pub local_tag: String,
    /// The far end's tag (in To).
    pub remote_tag: String,
    /// Our From value without the tag parameter.
    pub local_uri: String,
    /// The To value without the tag parameter.
    pub remote_uri: String,
    /// The remote target: the URI of the far end's Contact (§12.1.2).
    pub remote_target: String,
    /// The route set: Record-Route URIs of the 2xx in reverse order (§12.1.2), `<...>` kept.
    pub route_set: Vec<String>,
    /// Our CSeq for the next request is `local_cseq + 1`.
    pub local_cseq: u32,
    /// The highest CSeq seen on the far end's requests (None until its first request).
    pub remote_cseq: Option<u32>,
}

/// The first URI inside a name-addr (`"x" <sip:a@b;lr>;p=1` → `sip:a@b;lr`), or the whole
/// addr-spec up to its header parameters.
fn uri_of(value: &str) -> &str {
    match (value.find('<'), value.find('>')) {
        (Some(a), Some(b)) if b > a => &value[a + 1..b],
        _ => value.split(';').next().unwrap_or(value).trim(),
    }
}

/// Most Record-Route entries accepted in a 2xx (RFC 3261 sets no limit; real paths have a
/// handful of proxies).
pub const MAX_ROUTE_SET: usize = 16;

/// A `sip:` or `sips:` URI that parses. Errors: anything else (`a`, `tel:`, `http:`).
fn check_sip_uri(uri: &str) -> Result<(), String> {
    let lower = uri.get(..5).unwrap_or(uri).to_ascii_lowercase();
    if !(lower.starts_with("sip:") || lower.starts_with("sips:")) {
        return Err(format!("{uri:?} is not a SIP URI"));
    }
    parse_uri(uri).map(|_| ())
}

/// A header value with its `;tag=` parameter removed.
fn without_tag(value: &str) -> String {
    let close = value.find('>').map(|i| i + 1).unwrap_or(0);
    let (head, params) = value.split_at(close);
    let kept: Vec<&str> = params
        .split(';')
        .filter(|p| {
            p.split('=')
                .next()
                .is_none_or(|k| !k.trim().eq_ignore_ascii_case("tag"))
        })
        .collect();
    format!("{head}{}", kept.join(";")).trim().to_string()
}

/// The remote target (the URI of the first Contact, as received) and the Record-Route
/// entries in message order of `msg`, the message that creates a dialog (`what`: `2xx` or
/// `INVITE`, for the errors). Errors: no usable Contact; a Record-Route entry that is not a SIP
/// URI, or more than [`MAX_ROUTE_SET`] of them.
fn target_and_routes(msg: &Inbound, what: &str) -> Result<(String, Vec<String>), String> {
    let contact = msg
        .msg()
        .contact_header()
        .map_err(|_| format!("{what} without Contact"))?;
    // The URI text as received: typed parsing would drop URI parameters such as
    // `;transport=tcp` that the remote target must keep.
    let first = split_list(contact.value())
        .into_iter()
        .next()
        .ok_or_else(|| "empty Contact".to_string())?;
    let remote_target = uri_of(&first).to_string();
    check_sip_uri(&remote_target).map_err(|e| format!("Contact: {e}"))?;
    // The route set decides where every later request of the dialog goes: each entry must be
    // a SIP URI, and there are at most MAX_ROUTE_SET of them (a forged message with thousands
    // of `Record-Route: a` must not make us send requests built on them).
    let mut route_set = Vec::new();
    for rr in msg.msg().record_route_headers() {
        for v in split_list(rr.value()) {
            check_sip_uri(uri_of(&v)).map_err(|e| format!("Record-Route: {e}"))?;
            route_set.push(v);
            if route_set.len() > MAX_ROUTE_SET {
                return Err(format!("Record-Route: more than {MAX_ROUTE_SET} entries"));
            }
        }
    }
    Ok((remote_target, route_set))
}

impl Dialog {
    /// Creates the dialog from a 2xx to our INVITE (§12.1.2).
    ///
    /// `local_from` is the From value we sent (with our tag). Errors: a 2xx without a
    /// To-tag or without a usable Contact.
    pub fn from_response(
        local_from: &str,
        local_cseq: u32,
        resp: &Inbound,
    ) -> Result<Self, String> {
        let remote_tag = resp
            .to_tag()
            .ok_or_else(|| "2xx without To-tag".to_string())?;
        let local_tag = resp.from_tag().map(str::to_string).unwrap_or_default();
        let to_value = resp
            .msg()
            .to_header()
            .map_err(|e| e.to_string())?
            .value()
            .to_string();
        let (remote_target, mut route_set) = target_and_routes(resp, "2xx")?;
        route_set.reverse();
        Ok(Self {
            call_id: resp.call_id().to_string(),
            local_tag,
            remote_tag: remote_tag.to_string(),
            local_uri: without_tag(local_from),
            remote_uri: without_tag(&to_value),
            remote_target,
            route_set,
            local_cseq,
            remote_cseq: None,
        })
    }

    /// Creates the dialog from an INVITE we answer as UAS (§12.1.1): our tag `local_tag`
    /// (in the To of our responses), the far end's From tag, the INVITE's Contact as remote
    /// target and its Record-Route list in order as the route set; the far end's CSeq is the
    /// INVITE's, ours starts at 1. Errors: an INVITE without a From tag, without a usable
    /// Contact, or with a route set that does not hold.
    pub fn from_request(local_tag: &str, req: &Inbound) -> Result<Self, String> {
        let remote_tag = req
            .from_tag()
            .ok_or_else(|| "INVITE without a From tag".to_string())?;
        let from_value = req
            .msg()
            .from_header()
            .map_err(|e| e.to_string())?
            .value()
            .to_string();
        let to_value = req
            .msg()
            .to_header()
            .map_err(|e| e.to_string())?
            .value()
            .to_string();
        let (remote_target, route_set) = target_and_routes(req, "INVITE")?;
        Ok(Self {
            call_id: req.call_id().to_string(),
            local_tag: local_tag.to_string(),
            remote_tag: remote_tag.to_string(),
            local_uri: without_tag(&to_value),
            remote_uri: without_tag(&from_value),
            remote_target,
            route_set,
            local_cseq: 0,
            remote_cseq: Some(req.cseq),
        })
    }

    /// Request-URI and Route header values for a request in this dialog (§12.2.1.1).
    pub fn routing(&self) -> (String, Vec<String>) {
        match self.route_set.first() {
            None => (self.remote_target.clone(), Vec::new()),
            Some(first) if uri_of(first).contains(";lr") => {
                (self.remote_target.clone(), self.route_set.clone())
            }
            Some(first) => {
                // Strict routing: the first route becomes the Request-URI, the remote
                // target goes last in the Route list.
                let mut routes: Vec<String> = self.route_set[1..].to_vec();
                routes.push(format!("<{}>", self.remote_target));
                (uri_of(first).to_string(), routes)
            }
        }
    }

    /// The URI a request in this dialog is sent to (RFC 3261 §8.1.2): the first URI of the
    /// route set when there is one — the first Route with loose routing, the Request-URI
    /// with strict routing (§12.2.1.1) — else the remote target. Borrowed, no allocation.
    pub fn next_hop(&self) -> &str {
        self.route_set
            .first()
            .map_or(self.remote_target.as_str(), |r| uri_of(r))
    }

    /// Builds an in-dialog request with the next local CSeq (BYE, re-INVITE, …), its branch
    /// drawn from `tokens`. Returns `(branch, bytes)`.
    pub fn request(
        &mut self,
        method: Method,
        local: &LocalParty,
        extra: Vec<Header>,
        body: Vec<u8>,
        tokens: &mut Tokens,
    ) -> (String, Vec<u8>) {
        self.local_cseq += 1;
        let cseq = self.local_cseq;
        let via = local.via(tokens);
        self.build_with_via(method, cseq, local, extra, body, via)
    }

    /// Builds the ACK for a 2xx to the INVITE with CSeq `invite_cseq` (§13.2.2.4): a new
    /// branch, the INVITE's CSeq number, the dialog's routing. Returns the bytes.
    pub fn ack(&self, invite_cseq: u32, local: &LocalParty, tokens: &mut Tokens) -> Vec<u8> {
        let via = local.via(tokens);
        self.build_with_via(Method::Ack, invite_cseq, local, Vec::new(), Vec::new(), via)
            .1
    }

    /// The ACK for a non-2xx final response to an in-dialog re-INVITE (§17.1.1.3): the
    /// re-INVITE's Via (`via`, same branch) and CSeq number.
    pub fn non_2xx_ack(&self, cseq: u32, local: &LocalParty, via: &str) -> Vec<u8> {
        let via = (via.to_string(), String::new());
        self.build_with_via(Method::Ack, cseq, local, Vec::new(), Vec::new(), via)
            .1
    }

    fn build_with_via(
        &self,
        method: Method,
        cseq: u32,
        local: &LocalParty,
        extra: Vec<Header>,
        body: Vec<u8>,
        (via, branch): (String, String),
    ) -> (String, Vec<u8>) {
        let (ruri, routes) = self.routing();
        let mut h = Vec::with_capacity(10 + extra.len());
        h.push(Header::Via(Via::new(via)));
        h.push(Header::MaxForwards(MaxForwards::new("70")));
        for r in routes {
            h.push(Header::Route(Route::new(r)));
        }
        h.push(Header::From(From::new(format!(
            "{};tag={}",
            self.local_uri, self.local_tag
        ))));
        h.push(Header::To(To::new(format!(
            "{};tag={}",
            self.remote_uri, self.remote_tag
        ))));
        h.push(Header::CallId(CallId::new(self.call_id.clone())));
        h.push(Header::CSeq(CSeq::new(format!("{cseq} {method}"))));
        h.extend(extra);
        h.push(Header::UserAgent(UserAgent::new(local.user_agent.clone())));
        h.push(Header::ContentLength(ContentLength::new(
            body.len().to_string(),
        )));
        // The Request-URI as received (checked when the dialog was made), not re-rendered.
        (branch, request_bytes(method, &ruri, &h, &body))
    }

    /// Checks the far end's CSeq on an in-dialog request (§12.2.2): a request with a lower
    /// CSeq than one already seen is out of order and gets 500. Returns false for those.
    pub fn accept_remote_cseq(&mut self, cseq: u32, method: &str) -> bool {
        if method == "ACK" || method == "CANCEL" {
            return true;
        }
        match self.remote_cseq {
            Some(seen) if cseq < seen => false,
            _ => {
                self.remote_cseq = Some(cseq);
                true
            }
        }
    }
}

/// Splits a comma-separated header value list, respecting `<...>` and quotes.
fn split_list(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let (mut depth, mut quoted) = (0usize, false);
    for c in s.chars() {
        match c {
            '"' => quoted = !quoted,
            '<' if !quoted => depth += 1,
            '>' if !quoted => depth = depth.saturating_sub(1),
            ',' if !quoted && depth == 0 => {
                if !cur.trim().is_empty() {
                    out.push(cur.trim().to_string());
                }
                cur.clear();
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::message::parse_datagram;

    fn ok_with(rr: &str) -> Inbound {
        let raw = format!(
            "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKa\r\n{rr}\
From: \"Sales\" <sip:1000@127.0.0.1>;tag=L1\r\nTo: <sip:+15550100@127.0.0.1>;tag=R1\r\n\
Call-ID: c1\r\nCSeq: 1 INVITE\r\nContact: <sip:far@10.0.0.9:5090;transport=udp>\r\n\
Content-Length: 0\r\n\r\n"
        );
        parse_datagram(raw.as_bytes()).unwrap()
    }

    fn local() -> LocalParty {
        LocalParty {
            sent_by: "127.0.0.1:5070".into(),
            transport: Transport::Udp,
            user_agent: "outdial-test".into(),
        }
    }

    #[test]
    fn dialog_from_2xx_without_record_route() {
        let resp = ok_with("");
        let mut d =
            Dialog::from_response("\"Sales\" <sip:1000@127.0.0.1>;tag=L1", 1, &resp).unwrap();
        assert_eq!(d.remote_tag, "R1");
        assert_eq!(d.local_tag, "L1");
        assert_eq!(d.remote_target, "sip:far@10.0.0.9:5090;transport=udp");
        assert!(d.route_set.is_empty());
        let (_, bye) = d.request(
            Method::Bye,
            &local(),
            vec![],
            vec![],
            &mut crate::sip::message::Tokens::seeded(7),
        );
        let bye = parse_datagram(&bye).unwrap();
        assert_eq!(bye.cseq, 2);
        assert_eq!(bye.to_tag(), Some("R1"));
        assert_eq!(bye.from_tag(), Some("L1"));
        let req = bye.request().unwrap();
        // rsipstack re-serialises the transport value in upper case (case-insensitive).
        assert!(
            req.uri
                .to_string()
                .eq_ignore_ascii_case("sip:far@10.0.0.9:5090;transport=udp")
        );
    }

    #[test]
    fn route_set_is_reversed_record_route_and_loose_routed() {
        let resp = ok_with(
            "Record-Route: <sip:p2.example;lr>, <sip:p1.example;lr>\r\nRecord-Route: <sip:p0.example;lr>\r\n",
        );
        let d = Dialog::from_response("<sip:1000@h>;tag=L1", 1, &resp).unwrap();
        assert_eq!(
            d.route_set,
            vec![
                "<sip:p0.example;lr>",
                "<sip:p1.example;lr>",
                "<sip:p2.example;lr>"
            ]
        );
        let (ruri, routes) = d.routing();
        assert_eq!(ruri, d.remote_target);
        assert_eq!(routes.len(), 3);
        assert_eq!(d.next_hop(), "sip:p0.example;lr");
        let ack = parse_datagram(&d.ack(1, &local(), &mut crate::sip::message::Tokens::seeded(7)))
            .unwrap();
        assert_eq!(ack.cseq, 1);
        assert_eq!(ack.cseq_method(), "ACK");
        assert_eq!(ack.msg().route_headers().len(), 3);
    }

    #[test]
    fn a_route_set_that_is_not_sip_uris_or_too_long_is_refused() {
        let bad = ok_with("Record-Route: a\r\n");
        assert!(
            Dialog::from_response("<sip:me@h>;tag=1", 1, &bad)
                .unwrap_err()
                .contains("not a SIP URI")
        );
        let many = format!(
            "Record-Route: {}\r\n",
            vec!["<sip:p.example;lr>"; 17].join(",")
        );
        let resp = ok_with(&many);
        assert!(
            Dialog::from_response("<sip:me@h>;tag=1", 1, &resp)
                .unwrap_err()
                .contains("more than 16")
        );
        let ok = ok_with(&format!(
            "Record-Route: {}\r\n",
            vec!["<sip:p.example;lr>"; 16].join(",")
        ));
        assert_eq!(
            Dialog::from_response("<sip:me@h>;tag=1", 1, &ok)
                .unwrap()
                .route_set
                .len(),
            16
        );
    }

    #[test]
    fn in_dialog_requests_carry_the_remote_target_as_received() {
        let raw = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKa\r\n\
From: <sip:1000@127.0.0.1>;tag=L1\r\nTo: <sip:+15550100@127.0.0.1>;tag=R1\r\n\
Call-ID: c1\r\nCSeq: 1 INVITE\r\n\
Contact: <sip:Far@10.0.0.9:5090;Transport=UDP;x-Route=AbC;lr>\r\nContent-Length: 0\r\n\r\n";
        let resp = parse_datagram(raw.as_bytes()).unwrap();
        let mut d = Dialog::from_response("<sip:1000@h>;tag=L1", 1, &resp).unwrap();
        let mut tokens = crate::sip::message::Tokens::seeded(7);
        let (_, bye) = d.request(Method::Bye, &local(), vec![], vec![], &mut tokens);
        let ack = d.ack(1, &local(), &mut tokens);
        for req in [bye, ack] {
            let text = String::from_utf8(req).unwrap();
            let line = text.lines().next().unwrap();
            assert!(
                line.ends_with(" sip:Far@10.0.0.9:5090;Transport=UDP;x-Route=AbC;lr SIP/2.0"),
                "{line}"
            );
        }
    }

    #[test]
    fn strict_route_moves_remote_target_last() {
        let resp = ok_with("Record-Route: <sip:strict.example>\r\n");
        let d = Dialog::from_response("<sip:1000@h>;tag=L1", 1, &resp).unwrap();
        let (ruri, routes) = d.routing();
        assert_eq!(ruri, "sip:strict.example");
        assert_eq!(routes, vec!["<sip:far@10.0.0.9:5090;transport=udp>"]);
        // Sent to the Request-URI, the strict router (§8.1.2), not to the remote target.
        assert_eq!(d.next_hop(), "sip:strict.example");
        let no_route = Dialog::from_response("<sip:1000@h>;tag=L1", 1, &ok_with("")).unwrap();
        assert_eq!(no_route.next_hop(), "sip:far@10.0.0.9:5090;transport=udp");
    }

    #[test]
    fn remote_cseq_must_not_go_backwards() {
        let resp = ok_with("");
        let mut d = Dialog::from_response("<sip:1000@h>;tag=L1", 1, &resp).unwrap();
        assert!(d.accept_remote_cseq(5, "INVITE"));
        assert!(d.accept_remote_cseq(6, "BYE"));
        assert!(!d.accept_remote_cseq(4, "BYE"));
        assert!(d.accept_remote_cseq(5, "ACK"));
    }

    #[test]
    fn tag_is_stripped_from_name_addr() {
        assert_eq!(
            without_tag("\"A\" <sip:a@b;tag=x>;tag=abc;foo=1"),
            "\"A\" <sip:a@b;tag=x>;foo=1"
        );
        assert_eq!(without_tag("<sip:a@b>;tag=abc"), "<sip:a@b>");
    }
}
