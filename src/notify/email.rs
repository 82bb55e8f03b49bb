//! Email delivery of IVR recordings (`[ivr.email]`, docs/ivr.md) with `lettre` over SMTP:
//! one message per recording — the caller's number, the node, the length and the lead's
//! call-list columns in the text, the WAV attached. Sent off the run loop; a failure is
//! logged (the recording is still in its file and on the webhook).

use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart, header::ContentType};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::ivr::IvrEmail;

/// One recording to send.
#[derive(Debug, Clone)]
pub struct RecordingMail {
    /// The caller's number.
    pub number: String,
    /// The IVR node that recorded.
    pub node: String,
    /// Its length, ms.
    pub duration_ms: u32,
    /// The lead's call-list columns (a JSON object).
    pub attributes: serde_json::Value,
    /// The WAV file.
    pub file: std::path::PathBuf,
}

/// Builds the message. Errors: an address that does not parse, an unreadable file.
pub fn message(cfg: &IvrEmail, r: &RecordingMail) -> anyhow::Result<Message> {
    let subject = cfg
        .subject
        .as_deref()
        .unwrap_or("Voice message from {number}")
        .replace("{number}", &r.number);
    let mut text = format!(
        "A voice message was recorded by the IVR.\n\nNumber: {}\nNode: {}\nLength: {:.1} s\n",
        r.number,
        r.node,
        f64::from(r.duration_ms) / 1000.0
    );
    if let Some(m) = r.attributes.as_object() {
        for (k, v) in m {
            let v = v.as_str().map_or_else(|| v.to_string(), str::to_string);
            text.push_str(&format!("{k}: {v}\n"));
        }
    }
    let wav = std::fs::read(&r.file)?;
    let name = r.file.file_name().map_or_else(
        || "recording.wav".into(),
        |n| n.to_string_lossy().to_string(),
    );
    let mut b = Message::builder()
        .from(cfg.from.parse::<Mailbox>()?)
        .subject(subject);
    for to in &cfg.to {
        b = b.to(to.parse::<Mailbox>()?);
    }
    Ok(b.multipart(
        MultiPart::mixed()
            .singlepart(SinglePart::plain(text))
            .singlepart(Attachment::new(name).body(wav, ContentType::parse("audio/wav")?)),
    )?)
}

/// Sends `r` as `cfg` says. Errors: building the message, connecting, the server refusing.
pub async fn send(cfg: &IvrEmail, r: &RecordingMail) -> anyhow::Result<()> {
    let msg = message(cfg, r)?;
    let (host, port) = cfg
        .smtp
        .rsplit_once(':')
        .ok_or_else(|| anyhow::anyhow!("ivr.email.smtp: not host:port"))?;
    let mailer = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
        .port(port.parse()?)
        .timeout(Some(std::time::Duration::from_secs(10)))
        .build();
    mailer.send(msg).await?;
    Ok(())
}
