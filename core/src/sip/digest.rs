//! Digest authentication towards a trunk (RFC 3261 §22.2/§22.3 with RFC 2617 / RFC 7616):
//! answer a `WWW-Authenticate` (401) or `Proxy-Authenticate` (407) challenge with the
//! matching `Authorization` / `Proxy-Authorization` value. Parsing of the challenge and the
//! hash computation come from rsipstack's `sip` module (`WwwAuthenticate`,
//! `DigestGenerator`); MD5 and SHA-256, with or without `qop=auth`.

use rsipstack::sip::headers::auth::{Algorithm, AuthQop, Qop, Scheme};
use rsipstack::sip::typed::{Authorization, WwwAuthenticate};
use rsipstack::sip::{DigestGenerator, Method, Uri};

use super::message::Tokens;

/// A trunk account. The password is never printed (`Debug` redacts it).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// Username (the `username` of the digest).
    pub username: String,
    /// Password.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// A parsed challenge.
#[derive(Debug, Clone)]
pub struct Challenge {
    inner: WwwAuthenticate,
}

impl Challenge {
    /// Parses a `WWW-Authenticate` or `Proxy-Authenticate` value. Errors: not a Digest
    /// challenge, or malformed.
    pub fn parse(value: &str) -> Result<Self, String> {
        let inner = WwwAuthenticate::parse(value).map_err(|e| e.to_string())?;
        if inner.scheme != Scheme::Digest {
            return Err(format!("unsupported scheme {}", inner.scheme));
        }
        Ok(Self { inner })
    }

    /// `stale=true`: the nonce expired but our credentials were right (retry with the new one).
    pub fn is_stale(&self) -> bool {
        self.inner
            .stale
            .as_deref()
            .is_some_and(|s| s.eq_ignore_ascii_case("true"))
    }

    /// The realm.
    pub fn realm(&self) -> &str {
        &self.inner.realm
    }

    /// The credentials header value for `method` on `uri` (the Request-URI), nonce count `nc`
    /// (1 for the first use of a nonce); the cnonce is drawn from `tokens`.
    pub fn answer(
        &self,
        creds: &Credentials,
        method: &Method,
        uri: &Uri,
        nc: u8,
        tokens: &mut Tokens,
    ) -> String {
        let c = &self.inner;
        // RFC 2617 §3.2.1: without an algorithm the default is MD5.
        let algorithm = c.algorithm.unwrap_or(Algorithm::Md5);
        let qop = match c.qop {
            Some(Qop::Auth) | Some(Qop::AuthInt) => Some(AuthQop::Auth {
                cnonce: tokens.token(16),
                nc,
            }),
            None => None,
        };
        let response = DigestGenerator {
            username: &creds.username,
            password: &creds.password,
            nonce: &c.nonce,
            uri,
            realm: &c.realm,
            method,
            qop: qop.as_ref(),
            algorithm,
        }
        .compute();
        Authorization {
            scheme: Scheme::Digest,
            username: creds.username.clone(),
            realm: c.realm.clone(),
            nonce: c.nonce.clone(),
            uri: uri.clone(),
            response,
            algorithm: c.algorithm,
            opaque: c.opaque.clone(),
            qop,
        }
        .to_string()
        // RFC 2617 §3.2.2 / RFC 7616 §3.4: the qop value is a token in credentials, not a
        // quoted string (rsipstack quotes it; strict servers refuse that).
        .replace("qop=\"auth\"", "qop=auth")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answer_carries_the_challenge_fields() {
        let ch = Challenge::parse(
            "Digest realm=\"testrealm@host.com\", qop=\"auth\", \
             nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"",
        )
        .unwrap();
        let creds = Credentials {
            username: "Mufasa".into(),
            password: "Circle Of Life".into(),
        };
        let uri = crate::sip::message::parse_uri("sip:bob@biloxi.com").unwrap();
        let v = ch.answer(
            &creds,
            &Method::Invite,
            &uri,
            1,
            &mut crate::sip::message::Tokens::seeded(7),
        );
        assert!(
            v.starts_with("Digest username=\"Mufasa\", realm=\"testrealm@host.com\""),
            "{v}"
        );
        assert!(v.contains("uri=\"sip:bob@biloxi.com\""), "{v}");
        assert!(
            v.contains("opaque=\"5ccc069c403ebaf9f0171e9517f40e41\""),
            "{v}"
        );
        assert!(v.contains("qop=auth") && v.contains("nc=00000001"), "{v}");
        assert!(!format!("{creds:?}").contains("Circle"));
    }

    #[test]
    fn md5_without_qop_matches_a_hand_computed_response() {
        use md5::{Digest, Md5};
        let h = |s: &str| {
            Md5::digest(s.as_bytes())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        };
        let ch = Challenge::parse("Digest realm=\"trunk\", nonce=\"abc\"").unwrap();
        let creds = Credentials {
            username: "alice".into(),
            password: "secret".into(),
        };
        let uri = crate::sip::message::parse_uri("sip:+15550100@10.0.0.1:5060").unwrap();
        let v = ch.answer(
            &creds,
            &Method::Invite,
            &uri,
            1,
            &mut crate::sip::message::Tokens::seeded(7),
        );
        let expected = h(&format!(
            "{}:abc:{}",
            h("alice:trunk:secret"),
            h("INVITE:sip:+15550100@10.0.0.1:5060")
        ));
        assert!(v.contains(&format!("response=\"{expected}\"")), "{v}");
        assert!(!ch.is_stale());
        assert!(Challenge::parse("Basic realm=\"x\"").is_err());
    }
}
