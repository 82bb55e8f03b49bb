//! Digest authentication of agents' REGISTERs, the server side (RFC 3261 §22.4 with RFC 2617
//! and RFC 7616 / RFC 8760): challenges with `qop="auth"`, MD5 and SHA-256; verification from
//! the stored **HA1** (`H(username:realm:password)`), so no password is ever kept.
//!
//! Nonces are stateless and self-checking: `<issued, hex seconds>.<salt>.<HMAC-SHA-256 tag>`
//! (the tag keyed with a random secret made at start-up), so a forged nonce is refused and an
//! expired one is recognised as stale (`stale=true`, RFC 2617 §3.2.1: the credentials were
//! right, only the nonce is old). The nonce count (`nc`) of every nonce in use is remembered
//! until the nonce expires: a response whose `nc` is not above the last one seen for its nonce
//! is a replay and refused.
//!
//! The authorisation parameters are read with rsipstack's `AuthTokenizer`; the hashes are
//! RustCrypto's `md-5` and `sha2`, the nonce tag `hmac`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use hmac::{KeyInit, Mac};
use md5::Digest as _;

use crate::sip::message::Tokens;

/// A digest hash algorithm (RFC 7616 §3.3; `-sess` variants are not offered).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum DigestAlgorithm {
    /// `MD5` (RFC 2617), what nearly every SIP phone supports.
    #[serde(rename = "MD5")]
    Md5,
    /// `SHA-256` (RFC 7616, RFC 8760 for SIP).
    #[serde(rename = "SHA-256")]
    Sha256,
}

impl DigestAlgorithm {
    /// The token written in `algorithm=`.
    pub fn token(self) -> &'static str {
        match self {
            DigestAlgorithm::Md5 => "MD5",
            DigestAlgorithm::Sha256 => "SHA-256",
        }
    }

    /// Parses the token (case-insensitive); `None` for an algorithm we do not verify.
    pub fn parse(s: &str) -> Option<Self> {
        if s.eq_ignore_ascii_case("MD5") {
            Some(Self::Md5)
        } else if s.eq_ignore_ascii_case("SHA-256") {
            Some(Self::Sha256)
        } else {
            None
        }
    }

    /// Lowercase hex of this algorithm's hash of `data`.
    pub fn hash_hex(self, data: &[u8]) -> String {
        match self {
            DigestAlgorithm::Md5 => hex(&md5::Md5::digest(data)),
            DigestAlgorithm::Sha256 => hex(&sha2::Sha256::digest(data)),
        }
    }
}

/// An agent's stored secret: the two HA1 values (`H(username:realm:password)`), hex.
#[derive(Clone, PartialEq, Eq)]
pub struct Ha1 {
    /// MD5 HA1, 32 hex digits.
    pub md5: String,
    /// SHA-256 HA1, 64 hex digits.
    pub sha256: String,
}

impl Ha1 {
    /// Both HA1 values of a password (the password itself is dropped by the caller).
    pub fn from_password(username: &str, realm: &str, password: &str) -> Self {
        let a1 = format!("{username}:{realm}:{password}");
        Self {
            md5: DigestAlgorithm::Md5.hash_hex(a1.as_bytes()),
            sha256: DigestAlgorithm::Sha256.hash_hex(a1.as_bytes()),
        }
    }

    fn for_algorithm(&self, a: DigestAlgorithm) -> &str {
        match a {
            DigestAlgorithm::Md5 => &self.md5,
            DigestAlgorithm::Sha256 => &self.sha256,
        }
    }
}

impl std::fmt::Debug for Ha1 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ha1(<redacted>)")
    }
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    const D: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(D[usize::from(b >> 4)] as char);
        s.push(D[usize::from(b & 15)] as char);
    }
    s
}

/// The outcome of checking an `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The response is right for this user: authenticated.
    Ok {
        /// The authenticated username.
        username: String,
    },
    /// Right credentials on an expired nonce: challenge again with `stale=true`.
    Stale,
    /// No usable credentials for our realm (absent, another realm, unparsable): challenge.
    Missing,
    /// Wrong password, unknown user, forged nonce or replayed `nc`: refuse (403) and count a
    /// failure against the source.
    Failed {
        /// Short reason for the log and the counters (`wrong_password`, `unknown_user`,
        /// `bad_nonce`, `replay`, `no_qop`, `algorithm`). Never contains a secret.
        reason: &'static str,
        /// The username the client claimed, if it gave one.
        username: Option<String>,
    },
}

/// Issues challenges and verifies responses. Sans-IO: every call takes the time.
pub struct DigestServer {
    realm: String,
    algorithms: Vec<DigestAlgorithm>,
    key: [u8; 32],
    /// Nonce salts.
    tokens: Tokens,
    epoch: Instant,
    nonce_ttl: Duration,
    /// Highest `nc` seen per nonce, with the nonce's expiry.
    counts: HashMap<String, (u32, Instant)>,
}

impl DigestServer {
    /// A server for `realm` offering `algorithms` in preference order (RFC 8760 §2.4: one
    /// challenge header per algorithm, most preferred first); nonces live `nonce_ttl`.
    /// `epoch` is any instant not after the first use (nonce times count from it).
    pub fn new(
        realm: impl Into<String>,
        algorithms: Vec<DigestAlgorithm>,
        nonce_ttl: Duration,
        epoch: Instant,
        mut tokens: Tokens,
    ) -> Self {
        let mut key = [0u8; 32];
        for chunk in key.chunks_mut(8) {
            chunk.copy_from_slice(&tokens.u64().to_le_bytes());
        }
        Self {
            realm: realm.into(),
            algorithms,
            key,
            tokens,
            epoch,
            nonce_ttl,
            counts: HashMap::new(),
        }
    }

    /// The realm.
    pub fn realm(&self) -> &str {
        &self.realm
    }

    fn tag(&self, issued: u64, salt: &str) -> String {
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&self.key).expect("any key size");
        mac.update(format!("{issued:x}.{salt}").as_bytes());
        hex(&mac.finalize().into_bytes()[..16])
    }

    /// A fresh nonce.
    pub fn nonce(&mut self, now: Instant) -> String {
        let issued = now.saturating_duration_since(self.epoch).as_secs();
        let salt = self.tokens.token(8);
        format!("{issued:x}.{salt}.{}", self.tag(issued, &salt))
    }

    /// The `WWW-Authenticate` values of a challenge, one per algorithm, with a new nonce.
    pub fn challenges(&mut self, now: Instant, stale: bool) -> Vec<String> {
        let nonce = self.nonce(now);
        self.algorithms
            .iter()
            .map(|a| {
                format!(
                    "Digest realm=\"{}\", nonce=\"{nonce}\", algorithm={}, qop=\"auth\"{}",
                    self.realm,
                    a.token(),
                    if stale { ", stale=true" } else { "" }
                )
            })
            .collect()
    }

    /// `Ok(expired)` for a nonce we issued, `Err` for a forged or malformed one.
    fn check_nonce(&self, now: Instant, nonce: &str) -> Result<(bool, Instant), ()> {
        let mut parts = nonce.split('.');
        let (Some(ts), Some(salt), Some(tag), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(());
        };
        let issued = u64::from_str_radix(ts, 16).map_err(|_| ())?;
        let expected = self.tag(issued, salt);
        // Constant-time comparison of the tag.
        if expected.len() != tag.len()
            || expected
                .bytes()
                .zip(tag.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                != 0
        {
            return Err(());
        }
        let expires = self.epoch + Duration::from_secs(issued) + self.nonce_ttl;
        Ok((now >= expires, expires))
    }

    /// Verifies an `Authorization` header value for a request with `method`, looking the
    /// user's HA1 up with `lookup`. Records the nonce count when the response is right.
    pub fn verify(
        &mut self,
        now: Instant,
        header: &str,
        method: &str,
        lookup: impl Fn(&str) -> Option<Ha1>,
    ) -> Verdict {
        use crate::sip::message::wire::typed::tokenizers::AuthTokenizer;
        let Ok(tok) = AuthTokenizer::parse(header) else {
            return Verdict::Missing;
        };
        if !tok.scheme.eq_ignore_ascii_case("Digest") {
            return Verdict::Missing;
        }
        let p = |name: &str| {
            tok.params
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.trim_matches('"').to_string())
        };
        if p("realm").as_deref() != Some(self.realm.as_str()) {
            return Verdict::Missing;
        }
        let username = p("username");
        let fail = |reason| Verdict::Failed {
            reason,
            username: username.clone(),
        };
        let (Some(user), Some(nonce), Some(uri), Some(response)) =
            (username.clone(), p("nonce"), p("uri"), p("response"))
        else {
            return fail("malformed");
        };
        let algorithm = match p("algorithm") {
            None => DigestAlgorithm::Md5,
            Some(a) => match DigestAlgorithm::parse(&a) {
                Some(a) if self.algorithms.contains(&a) => a,
                _ => return fail("algorithm"),
            },
        };
        let (expired, nonce_expires) = match self.check_nonce(now, &nonce) {
            Ok(x) => x,
            Err(()) => return fail("bad_nonce"),
        };
        // qop=auth is required: without it there is no nonce count, hence no replay check.
        if !p("qop").is_some_and(|q| q.eq_ignore_ascii_case("auth")) {
            return fail("no_qop");
        }
        let (Some(nc_hex), Some(cnonce)) = (p("nc"), p("cnonce")) else {
            return fail("malformed");
        };
        let Ok(nc) = u32::from_str_radix(&nc_hex, 16) else {
            return fail("malformed");
        };
        let Some(ha1) = lookup(&user) else {
            return fail("unknown_user");
        };
        let ha2 = algorithm.hash_hex(format!("{method}:{uri}").as_bytes());
        let expected = algorithm.hash_hex(
            format!(
                "{}:{nonce}:{nc_hex}:{cnonce}:auth:{ha2}",
                ha1.for_algorithm(algorithm)
            )
            .as_bytes(),
        );
        if !expected.eq_ignore_ascii_case(&response) {
            return fail("wrong_password");
        }
        if expired {
            return Verdict::Stale;
        }
        self.counts.retain(|_, (_, exp)| *exp > now);
        let last = self.counts.entry(nonce).or_insert((0, nonce_expires));
        if nc <= last.0 {
            return fail("replay");
        }
        last.0 = nc;
        Verdict::Ok { username: user }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(
        alg: DigestAlgorithm,
        ha1: &Ha1,
        nonce: &str,
        nc: &str,
        uri: &str,
        user: &str,
    ) -> String {
        let ha2 = alg.hash_hex(format!("REGISTER:{uri}").as_bytes());
        let resp = alg.hash_hex(
            format!("{}:{nonce}:{nc}:c0ffee:auth:{ha2}", ha1.for_algorithm(alg)).as_bytes(),
        );
        format!(
            "Digest username=\"{user}\", realm=\"outdial\", nonce=\"{nonce}\", uri=\"{uri}\", \
             response=\"{resp}\", algorithm={}, qop=auth, nc={nc}, cnonce=\"c0ffee\"",
            alg.token()
        )
    }

    fn nonce_of(challenge: &str) -> String {
        let i = challenge.find("nonce=\"").unwrap() + 7;
        let j = challenge[i..].find('"').unwrap();
        challenge[i..i + j].to_string()
    }

    #[test]
    fn rfc2617_ha1_example() {
        // RFC 2617 §3.5: Mufasa / testrealm@host.com / Circle Of Life.
        let h = Ha1::from_password("Mufasa", "testrealm@host.com", "Circle Of Life");
        assert_eq!(h.md5, "939e7578ed9e3c518a452acee763bce9");
    }

    #[test]
    fn md5_and_sha256_verify_then_replay_and_stale() {
        let t0 = Instant::now();
        let mut s = DigestServer::new(
            "outdial",
            vec![DigestAlgorithm::Sha256, DigestAlgorithm::Md5],
            Duration::from_secs(300),
            t0,
            crate::sip::message::Tokens::seeded(7),
        );
        let ha1 = Ha1::from_password("1001", "outdial", "pw");
        let lookup = |u: &str| (u == "1001").then(|| ha1.clone());
        let ch = s.challenges(t0, false);
        assert_eq!(ch.len(), 2);
        assert!(ch[0].contains("algorithm=SHA-256") && ch[1].contains("algorithm=MD5"));
        let nonce = nonce_of(&ch[0]);
        for (alg, nc) in [
            (DigestAlgorithm::Sha256, "00000001"),
            (DigestAlgorithm::Md5, "00000002"),
        ] {
            let h = answer(alg, &ha1, &nonce, nc, "sip:outdial", "1001");
            assert_eq!(
                s.verify(t0, &h, "REGISTER", lookup),
                Verdict::Ok {
                    username: "1001".into()
                }
            );
        }
        // Same nc again: replay.
        let h = answer(
            DigestAlgorithm::Md5,
            &ha1,
            &nonce,
            "00000002",
            "sip:outdial",
            "1001",
        );
        assert!(matches!(
            s.verify(t0, &h, "REGISTER", lookup),
            Verdict::Failed {
                reason: "replay",
                ..
            }
        ));
        // Wrong password.
        let bad = Ha1::from_password("1001", "outdial", "nope");
        let h = answer(
            DigestAlgorithm::Md5,
            &bad,
            &nonce,
            "00000009",
            "sip:outdial",
            "1001",
        );
        assert!(matches!(
            s.verify(t0, &h, "REGISTER", lookup),
            Verdict::Failed {
                reason: "wrong_password",
                ..
            }
        ));
        // Unknown user.
        let h = answer(
            DigestAlgorithm::Md5,
            &ha1,
            &nonce,
            "0000000a",
            "sip:outdial",
            "9999",
        );
        assert!(matches!(
            s.verify(t0, &h, "REGISTER", lookup),
            Verdict::Failed {
                reason: "unknown_user",
                ..
            }
        ));
        // After the nonce's lifetime, right credentials are stale.
        let later = t0 + Duration::from_secs(301);
        let h = answer(
            DigestAlgorithm::Md5,
            &ha1,
            &nonce,
            "0000000b",
            "sip:outdial",
            "1001",
        );
        assert_eq!(s.verify(later, &h, "REGISTER", lookup), Verdict::Stale);
        assert!(s.challenges(later, true)[0].contains("stale=true"));
    }

    #[test]
    fn forged_nonce_and_other_realm() {
        let t0 = Instant::now();
        let mut s = DigestServer::new(
            "outdial",
            vec![DigestAlgorithm::Md5],
            Duration::from_secs(300),
            t0,
            crate::sip::message::Tokens::seeded(7),
        );
        let ha1 = Ha1::from_password("1001", "outdial", "pw");
        let lookup = |_: &str| Some(ha1.clone());
        let h = answer(
            DigestAlgorithm::Md5,
            &ha1,
            "0.abc.0000",
            "00000001",
            "sip:x",
            "1001",
        );
        assert!(matches!(
            s.verify(t0, &h, "REGISTER", lookup),
            Verdict::Failed {
                reason: "bad_nonce",
                ..
            }
        ));
        let other = h.replace("realm=\"outdial\"", "realm=\"elsewhere\"");
        assert_eq!(s.verify(t0, &other, "REGISTER", lookup), Verdict::Missing);
        assert_eq!(
            s.verify(t0, "Basic abc", "REGISTER", lookup),
            Verdict::Missing
        );
    }
}
