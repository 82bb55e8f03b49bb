//! The registrar agents' phones REGISTER with (RFC 3261 §10.3), as a sans-IO state machine.
//!
//! ```text
//! let out = registrar.handle_register(now, &msg, src, transport);   // the response to send, binding changes
//! registrar.poll_timeout()                                // when the next binding expires
//! registrar.handle_timeout(now)                           // expired bindings → changes
//! ```
//!
//! * Digest authentication ([`DigestServer`]): `401` with one challenge per algorithm, `stale`
//!   nonces re-challenged, wrong password / unknown user / replayed `nc` answered `403` and
//!   counted against the source address; a source with `max_failures` failures inside
//!   `failure_window` is ignored (no answer at all) for `block_for`.
//! * The authenticated username must be the To URI's user (§10.3 step 6: the address of
//!   record), otherwise `403`.
//! * Bindings (§10.3 step 7): several Contacts per agent (at most `max_contacts`), each with
//!   its expiry (`expires` Contact parameter, else the `Expires` header, else
//!   `default_expires`, capped at `max_expires`); `0` removes it, `Contact: *` with
//!   `Expires: 0` removes all; `0 < expires < min_expires` is `423 Interval Too Brief` with
//!   `Min-Expires`. A REGISTER with the Call-ID of a binding and a CSeq not above its last one
//!   is out of order and changes nothing (`500`, as the RFC prescribes).
//! * The `200 OK` lists every current binding with its remaining `expires`.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use crate::sip::message::wire::{Contact, Header};

use super::digest_auth::{DigestAlgorithm, DigestServer, Ha1, Verdict};
use crate::sip::message::{Inbound, Tokens, Transport, host_port, parse_uri, response_to};

/// Registrar settings (the `[acd.registrar]` table of a campaign).
#[derive(Debug, Clone)]
pub struct RegistrarConfig {
    /// Digest realm.
    pub realm: String,
    /// Algorithms offered, most preferred first.
    pub algorithms: Vec<DigestAlgorithm>,
    /// Nonce lifetime; older nonces with right credentials are `stale`.
    pub nonce_ttl: Duration,
    /// Shortest registration accepted, seconds (`423` below it).
    pub min_expires: u32,
    /// Longest registration granted, seconds (longer requests are shortened to it).
    pub max_expires: u32,
    /// Registration length when the REGISTER names none, seconds.
    pub default_expires: u32,
    /// Contacts kept per agent (the oldest goes when a new one would exceed it).
    pub max_contacts: usize,
    /// Failed authentications from one IP address that get it blocked …
    pub max_failures: u32,
    /// … when they happen within this long …
    pub failure_window: Duration,
    /// … for this long (its requests are dropped unanswered).
    pub block_for: Duration,
}

impl Default for RegistrarConfig {
    fn default() -> Self {
        Self {
            realm: "outdial".into(),
            algorithms: vec![DigestAlgorithm::Md5],
            nonce_ttl: Duration::from_secs(300),
            min_expires: 60,
            max_expires: 3600,
            default_expires: 3600,
            max_contacts: 5,
            max_failures: 5,
            failure_window: Duration::from_secs(60),
            block_for: Duration::from_secs(60),
        }
    }
}

/// One registered contact of an agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// The Contact URI (without `<>` and header parameters), the Request-URI of INVITEs to it.
    pub uri: String,
    /// Where requests to it are sent: over UDP the Contact's host and port when it is an IP
    /// literal, else the REGISTER's source address; over TCP always the source (the phone's
    /// connection).
    pub target: SocketAddr,
    /// The transport the REGISTER came on, which requests to the agent use too.
    pub transport: Transport,
    /// When it expires.
    pub expires_at: Instant,
    /// Call-ID and CSeq of the REGISTER that last refreshed it (§10.3 step 7).
    call_id: String,
    cseq: u32,
}

/// An agent became reachable (its first binding) or unreachable (its last one went).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindingChange {
    /// The agent's username.
    pub user: String,
    /// It has at least one binding now.
    pub registered: bool,
}

/// What to do after a REGISTER.
#[derive(Debug, Default)]
pub struct RegisterOutcome {
    /// The response to send back to the source (`None`: the source is blocked).
    pub response: Option<Vec<u8>>,
    /// Agents whose reachability changed.
    pub changes: Vec<BindingChange>,
}

/// Counters, for the run summary and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RegistrarStats {
    /// REGISTERs answered 200.
    pub registered: u64,
    /// Challenges sent (401).
    pub challenged: u64,
    /// Failed authentications (403).
    pub auth_failures: u64,
    /// Requests dropped from blocked sources.
    pub blocked: u64,
    /// Bindings that expired without a refresh.
    pub expired: u64,
}

#[derive(Debug, Default)]
struct Failures {
    count: u32,
    window_start: Option<Instant>,
    blocked_until: Option<Instant>,
}

/// The registrar. See the module docs.
pub struct Registrar {
    cfg: RegistrarConfig,
    digest: DigestServer,
    /// Response To-tags.
    tokens: Tokens,
    accounts: HashMap<String, Ha1>,
    bindings: HashMap<String, Vec<Binding>>,
    failures: HashMap<IpAddr, Failures>,
    stats: RegistrarStats,
}

/// A REGISTER refused: the status and the response's extra headers.
type Refusal = (u16, Vec<Header>);

impl Registrar {
    /// A registrar with no accounts; `now` anchors nonce times; tags, nonces and the nonce
    /// key are drawn from `tokens`.
    pub fn new(cfg: RegistrarConfig, now: Instant, mut tokens: Tokens) -> Self {
        Self {
            digest: DigestServer::new(
                cfg.realm.clone(),
                cfg.algorithms.clone(),
                cfg.nonce_ttl,
                now,
                tokens.fork(),
            ),
            tokens,
            cfg,
            accounts: HashMap::new(),
            bindings: HashMap::new(),
            failures: HashMap::new(),
            stats: RegistrarStats::default(),
        }
    }

    /// The digest realm (HA1 values must be computed with it).
    pub fn realm(&self) -> &str {
        &self.cfg.realm
    }

    /// Adds or replaces an agent account.
    pub fn set_account(&mut self, user: impl Into<String>, ha1: Ha1) {
        self.accounts.insert(user.into(), ha1);
    }

    /// Counters so far.
    pub fn stats(&self) -> RegistrarStats {
        self.stats
    }

    /// The agent's current bindings, most recently registered last.
    pub fn bindings(&self, user: &str) -> &[Binding] {
        self.bindings.get(user).map_or(&[], |v| v.as_slice())
    }

    /// True while `ip` is blocked for failed authentications.
    pub fn is_blocked(&self, now: Instant, ip: IpAddr) -> bool {
        self.failures
            .get(&ip)
            .and_then(|f| f.blocked_until)
            .is_some_and(|t| t > now)
    }

    fn record_failure(&mut self, now: Instant, ip: IpAddr) {
        let f = self.failures.entry(ip).or_default();
        if f.window_start
            .is_none_or(|s| now.saturating_duration_since(s) > self.cfg.failure_window)
        {
            f.window_start = Some(now);
            f.count = 0;
        }
        f.count += 1;
        if f.count >= self.cfg.max_failures {
            f.blocked_until = Some(now + self.cfg.block_for);
            f.count = 0;
            f.window_start = None;
            tracing::warn!(%ip, secs = self.cfg.block_for.as_secs(), "too many failed REGISTER authentications: source blocked");
        }
    }

    /// Handles one REGISTER from `src`. See the module docs for the rules.
    pub fn handle_register(
        &mut self,
        now: Instant,
        msg: &Inbound,
        src: SocketAddr,
        transport: Transport,
    ) -> RegisterOutcome {
        if self.is_blocked(now, src.ip()) {
            self.stats.blocked += 1;
            return RegisterOutcome::default();
        }
        let tag = self.tokens.token(12);
        let reply =
            |code: u16, extra: Vec<Header>| Some(response_to(msg, code, Some(&tag), extra, vec![]));
        // A response that changes no binding (challenge, refusal, error).
        let answer = |code: u16, extra: Vec<Header>| RegisterOutcome {
            response: reply(code, extra),
            changes: vec![],
        };
        let verdict = match msg.header_values("Authorization").first() {
            None => Verdict::Missing,
            Some(h) => {
                let accounts = &self.accounts;
                self.digest
                    .verify(now, h, "REGISTER", |u| accounts.get(u).cloned())
            }
        };
        let username = match verdict {
            Verdict::Missing | Verdict::Stale => {
                self.stats.challenged += 1;
                let stale = verdict == Verdict::Stale;
                let extra = self
                    .digest
                    .challenges(now, stale)
                    .into_iter()
                    .map(|c| Header::WwwAuthenticate(c.into()))
                    .collect();
                return answer(401, extra);
            }
            Verdict::Failed { reason, username } => {
                self.stats.auth_failures += 1;
                tracing::info!(%src, user = username.as_deref().unwrap_or("-"), reason, "REGISTER refused");
                self.record_failure(now, src.ip());
                return answer(403, vec![]);
            }
            Verdict::Ok { username } => username,
        };
        let aor_user = msg
            .header_values("To")
            .first()
            .and_then(|v| uri_of(v))
            .and_then(|u| parse_uri(&u).ok())
            .and_then(|u| u.auth.map(|a| a.user));
        if aor_user.as_deref() != Some(username.as_str()) {
            self.stats.auth_failures += 1;
            self.record_failure(now, src.ip());
            return answer(403, vec![]);
        }
        let header_expires: Option<u32> = msg
            .header_values("Expires")
            .first()
            .and_then(|v| v.trim().parse().ok());
        let contacts: Vec<String> = msg
            .header_values("Contact")
            .into_iter()
            .chain(msg.header_values("m"))
            .flat_map(|v| split_contacts(&v))
            .collect();
        let was_registered = !self.bindings(&username).is_empty();
        let call_id = msg.call_id().to_string();
        if contacts.iter().any(|c| c.trim() == "*") {
            if contacts.len() != 1 || header_expires != Some(0) {
                return answer(400, vec![]);
            }
            self.bindings.remove(&username);
        } else {
            let parsed = match self.parse_contacts(&contacts, header_expires, transport, src) {
                Ok(p) => p,
                Err((code, extra)) => return answer(code, extra),
            };
            let list = self.bindings.entry(username.clone()).or_default();
            for (uri, target, expires) in parsed {
                if let Some(b) = list.iter().find(|b| b.uri == uri)
                    && b.call_id == call_id
                    && msg.cseq <= b.cseq
                {
                    return answer(500, vec![]);
                }
                list.retain(|b| b.uri != uri);
                if expires > 0 {
                    list.push(Binding {
                        uri,
                        target,
                        transport,
                        expires_at: now + Duration::from_secs(u64::from(expires)),
                        call_id: call_id.clone(),
                        cseq: msg.cseq,
                    });
                }
            }
            while list.len() > self.cfg.max_contacts {
                list.remove(0);
            }
            if list.is_empty() {
                self.bindings.remove(&username);
            }
        }
        let now_registered = !self.bindings(&username).is_empty();
        let extra = self
            .bindings(&username)
            .iter()
            .map(|b| {
                let left = b.expires_at.saturating_duration_since(now).as_secs();
                Header::Contact(Contact::new(format!("<{}>;expires={left}", b.uri)))
            })
            .collect();
        self.stats.registered += 1;
        let changes = if was_registered != now_registered {
            vec![BindingChange {
                user: username,
                registered: now_registered,
            }]
        } else {
            vec![]
        };
        RegisterOutcome {
            response: reply(200, extra),
            changes,
        }
    }

    /// The Contacts of a REGISTER as (URI, where requests go, granted expiry s): a Contact's
    /// `expires` parameter, else the `Expires` header, else the default, at most the maximum.
    /// Errors: the response to send instead (400 for an unparsable Contact, 423 with
    /// `Min-Expires` for an expiry below the minimum, RFC 3261 §10.3).
    fn parse_contacts(
        &self,
        contacts: &[String],
        header_expires: Option<u32>,
        transport: Transport,
        src: SocketAddr,
    ) -> Result<Vec<(String, SocketAddr, u32)>, Refusal> {
        let mut parsed = Vec::new();
        for c in contacts {
            let uri = uri_of(c).ok_or((400, vec![]))?;
            let u = parse_uri(&uri).map_err(|_| (400, vec![]))?;
            let expires = contact_param(c, "expires")
                .and_then(|v| v.parse::<u32>().ok())
                .or(header_expires)
                .unwrap_or(self.cfg.default_expires);
            if expires != 0 && expires < self.cfg.min_expires {
                return Err((
                    423,
                    vec![Header::Other(
                        "Min-Expires".into(),
                        self.cfg.min_expires.to_string(),
                    )],
                ));
            }
            let (host, port) = host_port(&u);
            let target = match (transport, host.trim_matches(['[', ']']).parse::<IpAddr>()) {
                // Over TCP, requests go back on the phone's connection (RFC 3261 §18.2.2, the
                // connection-reuse rule of RFC 5626 §5): its source, not its Contact.
                (Transport::Tcp, _) | (_, Err(_)) => src,
                (Transport::Udp, Ok(ip)) => SocketAddr::new(ip, port),
            };
            parsed.push((uri, target, expires.min(self.cfg.max_expires)));
        }
        Ok(parsed)
    }

    /// When the next binding expires.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.bindings
            .values()
            .flat_map(|v| v.iter().map(|b| b.expires_at))
            .min()
    }

    /// Removes expired bindings; returns agents that lost their last one.
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<BindingChange> {
        let mut changes = Vec::new();
        let mut expired = 0;
        self.bindings.retain(|user, list| {
            let before = list.len();
            list.retain(|b| b.expires_at > now);
            expired += (before - list.len()) as u64;
            if list.is_empty() {
                changes.push(BindingChange {
                    user: user.clone(),
                    registered: false,
                });
                false
            } else {
                true
            }
        });
        self.stats.expired += expired;
        self.failures.retain(|_, f| {
            f.blocked_until.is_some_and(|t| t > now)
                || f.window_start
                    .is_some_and(|s| now.saturating_duration_since(s) <= self.cfg.failure_window)
        });
        changes
    }
}

/// Splits a Contact header value into its contacts at top-level commas.
fn split_contacts(v: &str) -> Vec<String> {
    let mut out = Vec::new();
    let (mut quoted, mut angle, mut start) = (false, false, 0);
    for (i, c) in v.char_indices() {
        match c {
            '"' if !angle => quoted = !quoted,
            '<' if !quoted => angle = true,
            '>' if !quoted => angle = false,
            ',' if !quoted && !angle => {
                out.push(v[start..i].trim().to_string());
                start = i + 1;
            }
            _ => {}
        }
    }
    let last = v[start..].trim();
    if !last.is_empty() {
        out.push(last.to_string());
    }
    out
}

/// The URI of a name-addr (`"A" <sip:a@h>;p`) or addr-spec (`sip:a@h;p`, where `;p` are
/// header parameters, RFC 3261 §20.10).
fn uri_of(v: &str) -> Option<String> {
    if let Some(i) = v.find('<') {
        let j = v[i..].find('>')? + i;
        return Some(v[i + 1..j].trim().to_string());
    }
    let v = v.trim();
    (!v.is_empty()).then(|| v.split(';').next().unwrap_or(v).trim().to_string())
}

/// A header parameter of a contact (after the `>` of a name-addr, or after the URI's first
/// `;` for an addr-spec).
fn contact_param(c: &str, name: &str) -> Option<String> {
    let params = match c.rfind('>') {
        Some(i) => &c[i + 1..],
        None => c.split_once(';').map_or("", |(_, p)| p),
    };
    params.split(';').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::message::parse_datagram;

    fn register(auth: Option<&str>, contact: &str, expires: Option<u32>, cseq: u32) -> Inbound {
        let mut s = format!(
            "REGISTER sip:127.0.0.1 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKr{cseq}\r\n\
From: <sip:1001@127.0.0.1>;tag=a1\r\n\
To: <sip:1001@127.0.0.1>\r\n\
Call-ID: reg1@127.0.0.1\r\n\
CSeq: {cseq} REGISTER\r\n\
Contact: {contact}\r\n"
        );
        if let Some(e) = expires {
            s.push_str(&format!("Expires: {e}\r\n"));
        }
        if let Some(a) = auth {
            s.push_str(&format!("Authorization: {a}\r\n"));
        }
        s.push_str("Content-Length: 0\r\n\r\n");
        parse_datagram(s.as_bytes()).unwrap()
    }

    fn status(b: &[u8]) -> u16 {
        std::str::from_utf8(&b[8..11]).unwrap().parse().unwrap()
    }

    fn auth_for(resp: &[u8], password: &str, nc: &str) -> String {
        let text = String::from_utf8_lossy(resp);
        let i = text.find("nonce=\"").unwrap() + 7;
        let nonce = &text[i..i + text[i..].find('"').unwrap()];
        let ha1 = Ha1::from_password("1001", "outdial", password);
        let alg = DigestAlgorithm::Md5;
        let ha2 = alg.hash_hex(b"REGISTER:sip:127.0.0.1");
        let r = alg.hash_hex(format!("{}:{nonce}:{nc}:ab:auth:{ha2}", ha1.md5).as_bytes());
        format!(
            "Digest username=\"1001\",realm=\"outdial\",nonce=\"{nonce}\",uri=\"sip:127.0.0.1\",\
             response=\"{r}\",algorithm=MD5,qop=auth,nc={nc},cnonce=\"ab\""
        )
    }

    fn registrar(now: Instant) -> Registrar {
        let mut r = Registrar::new(
            RegistrarConfig {
                max_failures: 3,
                ..RegistrarConfig::default()
            },
            now,
            crate::sip::message::Tokens::seeded(7),
        );
        r.set_account("1001", Ha1::from_password("1001", "outdial", "secret"));
        r
    }

    const SRC: &str = "127.0.0.1:5070";

    #[test]
    fn challenge_register_refresh_and_expire() {
        let t0 = Instant::now();
        let mut r = registrar(t0);
        let src: SocketAddr = SRC.parse().unwrap();
        let out = r.handle_register(
            t0,
            &register(None, "<sip:1001@127.0.0.1:5070>", Some(120), 1),
            src,
            Transport::Udp,
        );
        let ch = out.response.unwrap();
        assert_eq!(status(&ch), 401);
        assert!(String::from_utf8_lossy(&ch).contains("qop=\"auth\""));
        let a = auth_for(&ch, "secret", "00000001");
        let out = r.handle_register(
            t0,
            &register(Some(&a), "<sip:1001@127.0.0.1:5070>", Some(120), 2),
            src,
            Transport::Udp,
        );
        let ok = out.response.unwrap();
        assert_eq!(status(&ok), 200, "{}", String::from_utf8_lossy(&ok));
        assert!(String::from_utf8_lossy(&ok).contains("expires=120"));
        assert_eq!(
            out.changes,
            vec![BindingChange {
                user: "1001".into(),
                registered: true
            }]
        );
        assert_eq!(r.bindings("1001")[0].target, src);
        // Nothing expires at 119 s; at 120 s the binding goes and the agent is unreachable.
        assert_eq!(r.poll_timeout(), Some(t0 + Duration::from_secs(120)));
        assert!(r.handle_timeout(t0 + Duration::from_secs(119)).is_empty());
        let ch = r.handle_timeout(t0 + Duration::from_secs(120));
        assert_eq!(
            ch,
            vec![BindingChange {
                user: "1001".into(),
                registered: false
            }]
        );
        assert!(r.bindings("1001").is_empty());
        assert_eq!(r.stats().expired, 1);
    }

    #[test]
    fn over_tcp_the_binding_is_the_phones_connection() {
        let t0 = Instant::now();
        let mut r = registrar(t0);
        let src: SocketAddr = "127.0.0.1:40123".parse().unwrap();
        let contact = "<sip:1001@10.0.0.9:5062;transport=tcp>";
        let ch = r
            .handle_register(
                t0,
                &register(None, contact, Some(120), 1),
                src,
                Transport::Tcp,
            )
            .response
            .unwrap();
        let a = auth_for(&ch, "secret", "00000001");
        let out = r.handle_register(
            t0,
            &register(Some(&a), contact, Some(120), 2),
            src,
            Transport::Tcp,
        );
        assert_eq!(status(&out.response.unwrap()), 200);
        let b = &r.bindings("1001")[0];
        assert_eq!((b.target, b.transport), (src, Transport::Tcp));
        assert!(b.uri.starts_with("sip:1001@10.0.0.9:5062"), "{}", b.uri);
    }

    #[test]
    fn unregister_too_brief_and_replayed_cseq() {
        let t0 = Instant::now();
        let mut r = registrar(t0);
        let src: SocketAddr = SRC.parse().unwrap();
        let ch = r
            .handle_register(
                t0,
                &register(None, "<sip:1001@10.0.0.9:5062>", None, 1),
                src,
                Transport::Udp,
            )
            .response
            .unwrap();
        let a = auth_for(&ch, "secret", "00000001");
        let out = r.handle_register(
            t0,
            &register(Some(&a), "<sip:1001@10.0.0.9:5062>;expires=30", None, 2),
            src,
            Transport::Udp,
        );
        let resp = out.response.unwrap();
        assert_eq!(status(&resp), 423);
        assert!(String::from_utf8_lossy(&resp).contains("Min-Expires: 60"));
        let a = auth_for(&ch, "secret", "00000002");
        let out = r.handle_register(
            t0,
            &register(
                Some(&a),
                "<sip:1001@10.0.0.9:5062>, <sip:1001@10.0.0.9:5064>",
                None,
                3,
            ),
            src,
            Transport::Udp,
        );
        assert_eq!(status(&out.response.unwrap()), 200);
        assert_eq!(r.bindings("1001").len(), 2);
        assert_eq!(
            r.bindings("1001")[0].target,
            "10.0.0.9:5062".parse().unwrap()
        );
        // Same Call-ID, CSeq not higher: out of order, nothing changes.
        let a = auth_for(&ch, "secret", "00000003");
        let out = r.handle_register(
            t0,
            &register(Some(&a), "<sip:1001@10.0.0.9:5062>", Some(0), 3),
            src,
            Transport::Udp,
        );
        assert_eq!(status(&out.response.unwrap()), 500);
        assert_eq!(r.bindings("1001").len(), 2);
        let a = auth_for(&ch, "secret", "00000004");
        let out = r.handle_register(
            t0,
            &register(Some(&a), "*", Some(0), 4),
            src,
            Transport::Udp,
        );
        assert_eq!(status(&out.response.unwrap()), 200);
        assert!(r.bindings("1001").is_empty());
        assert_eq!(
            out.changes,
            vec![BindingChange {
                user: "1001".into(),
                registered: false
            }]
        );
    }

    #[test]
    fn wrong_passwords_are_refused_then_the_source_is_blocked() {
        let t0 = Instant::now();
        let mut r = registrar(t0);
        let src: SocketAddr = SRC.parse().unwrap();
        for i in 0..3u32 {
            let ch = r
                .handle_register(
                    t0,
                    &register(None, "<sip:1001@127.0.0.1:5070>", None, 1 + 2 * i),
                    src,
                    Transport::Udp,
                )
                .response
                .unwrap();
            let a = auth_for(&ch, "wrong", "00000001");
            let out = r.handle_register(
                t0,
                &register(Some(&a), "<sip:1001@127.0.0.1:5070>", None, 2 + 2 * i),
                src,
                Transport::Udp,
            );
            assert_eq!(status(&out.response.unwrap()), 403);
        }
        // Third failure: blocked, even the right password gets no answer until block_for passes.
        assert!(
            r.handle_register(
                t0,
                &register(None, "<sip:1001@127.0.0.1:5070>", None, 9),
                src,
                Transport::Udp
            )
            .response
            .is_none()
        );
        assert_eq!(r.stats().blocked, 1);
        let later = t0 + Duration::from_secs(61);
        let ch = r
            .handle_register(
                later,
                &register(None, "<sip:1001@127.0.0.1:5070>", None, 10),
                src,
                Transport::Udp,
            )
            .response
            .unwrap();
        assert_eq!(status(&ch), 401);
        let a = auth_for(&ch, "secret", "00000001");
        let out = r.handle_register(
            later,
            &register(Some(&a), "<sip:1001@127.0.0.1:5070>", None, 11),
            src,
            Transport::Udp,
        );
        assert_eq!(status(&out.response.unwrap()), 200);
    }

    #[test]
    fn contact_lists_split_outside_quotes_and_brackets() {
        assert_eq!(
            split_contacts("\"a, b\" <sip:a@h;x=1,2>;expires=5, sip:c@h;expires=7"),
            vec!["\"a, b\" <sip:a@h;x=1,2>;expires=5", "sip:c@h;expires=7"]
        );
        assert_eq!(
            contact_param("sip:c@h;expires=7", "expires").as_deref(),
            Some("7")
        );
        assert_eq!(uri_of("sip:c@h;expires=7").as_deref(), Some("sip:c@h"));
    }
}
