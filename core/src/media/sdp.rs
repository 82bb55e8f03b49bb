//! Reading the far end's SDP answer (RFC 4566 / RFC 3264): where to send RTP, which G.711 law
//! it chose, its telephone-event payload type and its packet time.

use std::net::{IpAddr, SocketAddr};

use super::g711::Law;

/// What the answer says about the audio stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioAnswer {
    /// Address and port for our RTP (`c=` and `m=audio`); port 0 means the stream was refused.
    pub remote: SocketAddr,
    /// The G.711 law: the first of PCMU/PCMA in the answer's format list.
    pub law: Law,
    /// The telephone-event payload type (RFC 4733), if the answer kept it.
    pub telephone_event: Option<u8>,
    /// `a=ptime` in ms (20 when absent).
    pub ptime_ms: u32,
}

/// Parses an SDP answer. Errors: no `m=audio` line, no connection address, or neither PCMU
/// nor PCMA among its formats.
pub fn parse_answer(body: &[u8]) -> Result<AudioAnswer, String> {
    let text = std::str::from_utf8(body).map_err(|_| "SDP is not UTF-8".to_string())?;
    let mut session_ip: Option<IpAddr> = None;
    let mut media_ip: Option<IpAddr> = None;
    let mut in_audio = false;
    let mut seen_audio = false;
    let mut port: Option<u16> = None;
    let mut formats: Vec<u8> = Vec::new();
    let mut te: Option<u8> = None;
    let mut ptime = 20;
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if let Some(m) = line.strip_prefix("m=") {
            in_audio = !seen_audio && m.starts_with("audio ");
            if in_audio {
                seen_audio = true;
                let mut parts = m.split_whitespace().skip(1);
                let p = parts.next().ok_or("m=audio without a port")?;
                port = Some(
                    p.split('/')
                        .next()
                        .unwrap_or("")
                        .parse()
                        .map_err(|_| format!("bad m=audio port {p:?}"))?,
                );
                let _proto = parts.next();
                formats = parts.filter_map(|f| f.parse().ok()).collect();
            }
        } else if let Some(c) = line.strip_prefix("c=") {
            let addr = c
                .split_whitespace()
                .nth(2)
                .map(|a| a.split('/').next().unwrap_or(a));
            let ip = addr.and_then(|a| a.parse::<IpAddr>().ok());
            if in_audio {
                media_ip = ip;
            } else if !seen_audio {
                session_ip = ip;
            }
        } else if in_audio {
            if let Some(r) = line.strip_prefix("a=rtpmap:") {
                let (pt, enc) = r.split_once(' ').unwrap_or((r, ""));
                if enc.to_ascii_lowercase().starts_with("telephone-event/8000") {
                    te = pt.trim().parse().ok();
                }
            } else if let Some(p) = line.strip_prefix("a=ptime:") {
                ptime = p.trim().parse().unwrap_or(20);
            }
        }
    }
    if !seen_audio {
        return Err("no m=audio line".into());
    }
    let ip = media_ip
        .or(session_ip)
        .ok_or("no connection address (c=)")?;
    let law = formats
        .iter()
        .find_map(|f| Law::from_payload_type(*f))
        .ok_or("answer has neither PCMU (0) nor PCMA (8)")?;
    Ok(AudioAnswer {
        remote: SocketAddr::new(ip, port.unwrap_or(0)),
        law,
        telephone_event: te.filter(|t| formats.contains(t)),
        ptime_ms: ptime.clamp(10, 60),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_address_law_event_and_ptime() {
        let sdp = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n\
m=audio 40000 RTP/AVP 8 101\r\nc=IN IP4 10.0.0.2\r\na=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\na=ptime:30\r\n";
        let a = parse_answer(sdp.as_bytes()).unwrap();
        assert_eq!(a.remote, "10.0.0.2:40000".parse().unwrap());
        assert_eq!(a.law, Law::Pcma);
        assert_eq!(a.telephone_event, Some(101));
        assert_eq!(a.ptime_ms, 30);
    }

    #[test]
    fn session_level_address_and_defaults() {
        let sdp = "v=0\nc=IN IP4 127.0.0.1\nm=audio 6000 RTP/AVP 0\n";
        let a = parse_answer(sdp.as_bytes()).unwrap();
        assert_eq!(a.remote, "127.0.0.1:6000".parse().unwrap());
        assert_eq!(
            (a.law, a.telephone_event, a.ptime_ms),
            (Law::Pcmu, None, 20)
        );
    }

    #[test]
    fn refuses_answers_without_g711() {
        assert!(parse_answer(b"v=0\nc=IN IP4 1.2.3.4\nm=audio 1 RTP/AVP 18\n").is_err());
        assert!(parse_answer(b"v=0\nc=IN IP4 1.2.3.4\n").is_err());
        assert!(parse_answer(b"v=0\nm=audio 1 RTP/AVP 0\n").is_err());
    }
}
