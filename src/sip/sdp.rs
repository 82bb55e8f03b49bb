//! The SDP offer of an outgoing call (RFC 4566, offer/answer per RFC 3264).

/// The RTP payload types we offer, in preference order: PCMU (0), PCMA (8) and
/// telephone-event (RFC 4733) on dynamic type 101.
pub const OFFERED_PAYLOADS: [u8; 3] = [0, 8, 101];

/// Builds the audio offer for a call whose RTP is received on `ip:rtp_port`.
///
/// `session_id` is the `o=` session id (any 63-bit number unique per call); `version` is the
/// `o=` version, incremented each time the session is re-offered (a re-INVITE answer).
pub fn audio_offer(ip: &str, rtp_port: u16, session_id: u64, version: u64) -> String {
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
a=sendrecv\r\n"
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn offer_lists_pcmu_pcma_and_telephone_event() {
        let o = super::audio_offer("127.0.0.1", 20000, 7, 1);
        assert!(o.contains("m=audio 20000 RTP/AVP 0 8 101\r\n"));
        assert!(o.contains("a=rtpmap:101 telephone-event/8000\r\n"));
        assert!(o.contains("c=IN IP4 127.0.0.1\r\n"));
    }
}
