//! The SDP offer of an outgoing call and the answer to an incoming one (RFC 4566,
//! offer/answer per RFC 3264).

/// The RTP payload types we offer, in preference order: PCMU (0), PCMA (8) and
/// telephone-event (RFC 4733) on dynamic type 101.
pub const OFFERED_PAYLOADS: [u8; 3] = [0, 8, 101];

/// Builds the audio offer for a call whose RTP is received on `ip:rtp_port`.
///
/// `session_id` is the `o=` session id (any 63-bit number unique per call); `version` is the
/// `o=` version, incremented each time the session is re-offered (a re-INVITE answer).
pub fn audio_offer(ip: &str, rtp_port: u16, session_id: u64, version: u64) -> String {
    audio_sdp(ip, rtp_port, session_id, version, "sendrecv")
}

/// The stream direction an SDP body asks for (RFC 3264 §5.1, §8.4): the last of
/// `a=sendrecv|sendonly|recvonly|inactive` in it (a media-level attribute follows the
/// session-level one), `sendrecv` when there is none; `inactive` whatever the attributes
/// say for the RFC 2543 hold form `c=IN IP4 0.0.0.0` (RFC 3264 §8.4 still asks answerers to
/// honour it).
pub fn direction_of(sdp: &[u8]) -> &'static str {
    let text = String::from_utf8_lossy(sdp);
    let mut dir = "sendrecv";
    let mut zero_address = false;
    for line in text.lines() {
        match line.trim_end() {
            "a=sendrecv" => dir = "sendrecv",
            "a=sendonly" => dir = "sendonly",
            "a=recvonly" => dir = "recvonly",
            "a=inactive" => dir = "inactive",
            "c=IN IP4 0.0.0.0" => zero_address = true,
            _ => {}
        }
    }
    if zero_address { "inactive" } else { dir }
}

/// The direction to answer an offer of direction `offered` with (RFC 3264 §6.1).
pub fn answer_direction(offered: &str) -> &'static str {
    match offered {
        "sendonly" => "recvonly",
        "recvonly" => "sendonly",
        "inactive" => "inactive",
        _ => "sendrecv",
    }
}

/// [`audio_offer`] with another direction attribute (`sendrecv`, `sendonly`, `recvonly` or
/// `inactive`): the answer to a hold re-INVITE.
pub fn audio_sdp(
    ip: &str,
    rtp_port: u16,
    session_id: u64,
    version: u64,
    direction: &str,
) -> String {
    format!(
        "v=0\r\n\
o=outdial {session_id} {version} IN IP4 {ip}\r\n\
s=outdial\r\n\
c=IN IP4 {ip}\r\n\
t=0 0\r\n\
m=audio {rtp_port} RTP/AVP 0 8 101\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n\
a=ptime:20\r\n\
a={direction}\r\n"
    )
}

/// Our SDP answer to an offer (RFC 3264 §6.1) for an inbound call: the one G.711 law we
/// chose from the offer (payload type `law_pt`, 0 or 8), and telephone-event on the offer's
/// payload type `event_pt` when it offered one; RTP received on `ip:rtp_port`.
pub fn audio_answer(
    ip: &str,
    rtp_port: u16,
    session_id: u64,
    law_pt: u8,
    event_pt: Option<u8>,
) -> String {
    let name = if law_pt == 8 { "PCMA" } else { "PCMU" };
    let (fmts, event) = match event_pt {
        Some(t) => (
            format!("{law_pt} {t}"),
            format!("a=rtpmap:{t} telephone-event/8000\r\na=fmtp:{t} 0-16\r\n"),
        ),
        None => (law_pt.to_string(), String::new()),
    };
    format!(
        "v=0\r\n\
o=outdial {session_id} 1 IN IP4 {ip}\r\n\
s=outdial\r\n\
c=IN IP4 {ip}\r\n\
t=0 0\r\n\
m=audio {rtp_port} RTP/AVP {fmts}\r\n\
a=rtpmap:{law_pt} {name}/8000\r\n\
{event}a=ptime:20\r\n\
a=sendrecv\r\n"
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_answer_keeps_one_law_and_the_offered_event_type() {
        let a = super::audio_answer("127.0.0.1", 20002, 9, 8, Some(96));
        assert!(a.contains("m=audio 20002 RTP/AVP 8 96\r\n"), "{a}");
        assert!(a.contains("a=rtpmap:8 PCMA/8000\r\na=rtpmap:96 telephone-event/8000\r\n"));
        let b = super::audio_answer("127.0.0.1", 20002, 9, 0, None);
        assert!(b.contains("m=audio 20002 RTP/AVP 0\r\n") && !b.contains("telephone-event"));
    }

    #[test]
    fn offer_lists_pcmu_pcma_and_telephone_event() {
        let o = super::audio_offer("127.0.0.1", 20000, 7, 1);
        assert!(o.contains("m=audio 20000 RTP/AVP 0 8 101\r\n"));
        assert!(o.contains("a=rtpmap:101 telephone-event/8000\r\n"));
        assert!(o.contains("c=IN IP4 127.0.0.1\r\n"));
        assert!(o.ends_with("a=sendrecv\r\n"));
    }

    #[test]
    fn hold_directions() {
        use super::{answer_direction, direction_of};
        assert_eq!(
            direction_of(b"v=0\r\nm=audio 1 RTP/AVP 0\r\na=sendonly\r\n"),
            "sendonly"
        );
        assert_eq!(direction_of(b"v=0\r\nc=IN IP4 0.0.0.0\r\n"), "inactive");
        assert_eq!(
            direction_of(b"v=0\r\na=inactive\r\nm=audio 1 RTP/AVP 0\r\na=sendrecv\r\n"),
            "sendrecv"
        );
        assert_eq!(direction_of(b""), "sendrecv");
        assert_eq!(answer_direction("sendonly"), "recvonly");
        assert_eq!(answer_direction("inactive"), "inactive");
    }
}
