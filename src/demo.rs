//! `outdial demo`: a SIPp far end on loopback, a sample call list, a campaign against it.
//!
//! Also home of [`SippUas`], which starts SIPp as a trunk far end; the integration tests use it
//! too, so the demo and the tests exercise the same far end.

use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::sip::message::Transport;

/// The far-end scenario that picks its outcome from the last digit of the dialled number
/// (see the comment at its top).
pub const OUTCOMES_SCENARIO: &str = include_str!("../sip-fixtures/scenarios/uas_outcomes.xml");

/// The outcomes scenario with a person's voice on outcome 0 and a voicemail greeting on
/// outcome 1 (SIPp `rtp_stream` of 8 kHz µ-law WAV files).
pub fn outcomes_with_audio(human: &Path, machine: &Path) -> String {
    let stream = |p: &Path| {
        format!(
            "<recv request=\"ACK\" crlf=\"true\"><action><exec rtp_stream=\"{},1,0\"/></action></recv>",
            p.display()
        )
    };
    OUTCOMES_SCENARIO
        .replace(
            "<recv request=\"ACK\" crlf=\"true\"/> <!-- human audio -->",
            &stream(human),
        )
        .replace(
            "<recv request=\"ACK\" crlf=\"true\"/> <!-- machine audio -->",
            &stream(machine),
        )
}

/// Makes the two demo clips with `sip-fixtures/audio/generate.py --demo` (python3, espeak-ng,
/// sox). Returns `(human, machine)` paths, or the reason it could not.
pub fn demo_clips(dir: &Path) -> Result<(PathBuf, PathBuf), String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("sip-fixtures/audio/generate.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg("--demo")
        .arg(dir)
        .output()
        .map_err(|e| format!("python3: {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
    }
    Ok((dir.join("demo-human.wav"), dir.join("demo-machine.wav")))
}

/// A SIPp UAS running as a child process on 127.0.0.1; killed when dropped.
pub struct SippUas {
    child: Child,
    /// Where it listens for SIP.
    pub addr: SocketAddr,
    /// The transport it listens on.
    pub transport: Transport,
    /// Its RTP port (`-mp`, the `[media_port]` of its SDP).
    pub media_port: u16,
    dir: tempfile::TempDir,
}

/// A free port on 127.0.0.1 for the transport: bound, read and released, and never handed
/// out twice by this process (so SIPp instances started side by side in one test binary
/// cannot be given the same port). Ports in the default RTP range (20000–29999) are avoided.
pub fn free_port(t: Transport) -> std::io::Result<u16> {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    for _ in 0..100 {
        let port = match t {
            Transport::Udp => UdpSocket::bind("127.0.0.1:0")?.local_addr()?.port(),
            Transport::Tcp => TcpListener::bind("127.0.0.1:0")?.local_addr()?.port(),
        };
        if (20000..30000).contains(&port) || (20000..30000).contains(&port.wrapping_add(2)) {
            continue;
        }
        let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
        // SIPp's media port p also takes p+2, and each further rtp_stream call the next ports
        // up: keep a margin of 10 around every port handed out.
        if given.iter().any(|g| g.abs_diff(port) <= 10) {
            continue;
        }
        given.push(port);
        return Ok(port);
    }
    Err(std::io::Error::other("no free port found"))
}

impl SippUas {
    /// Starts `sipp` with the scenario text on a free loopback port.
    /// `extra` is appended to the command line (e.g. `["-lost", "10"]`).
    /// Errors: `sipp` not installed (install Debian's `sip-tester`), or it exited at once
    /// (its stderr is included).
    pub fn start(scenario_xml: &str, transport: Transport, extra: &[&str]) -> anyhow::Result<Self> {
        let mut last_err = None;
        // A port can be taken between probing and SIPp binding it: try fresh ports a few times.
        for _ in 0..5 {
            match Self::start_at(scenario_xml, transport, free_port(transport)?, extra) {
                Ok(uas) => return Ok(uas),
                Err(e) => last_err = Some(e),
            }
        }
        Err(last_err.unwrap_or_else(|| anyhow::anyhow!("sipp did not start")))
    }

    /// [`SippUas::start`] on a given SIP `port` (a trunk address that was dead until now).
    /// Errors: as `start`, or the port is taken.
    pub fn start_at(
        scenario_xml: &str,
        transport: Transport,
        port: u16,
        extra: &[&str],
    ) -> anyhow::Result<Self> {
        {
            let dir = tempfile::tempdir().context("creating a temporary directory for SIPp")?;
            let scenario = dir.path().join("uas.xml");
            std::fs::write(&scenario, scenario_xml)?;
            let media = free_port(Transport::Udp)?;
            let err_path = dir.path().join("sipp.stderr");
            let mut cmd = Command::new("sipp");
            cmd.arg("-sf")
                .arg(&scenario)
                .args(["-i", "127.0.0.1", "-p", &port.to_string()])
                .args(["-mp", &media.to_string()])
                .args([
                    "-t",
                    if transport == Transport::Tcp {
                        "t1"
                    } else {
                        "u1"
                    },
                ])
                .args(["-nostdin", "-aa", "-max_recv_loops", "10000"])
                .args(extra)
                .current_dir(dir.path())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&err_path)?);
            let child = match cmd.spawn() {
                Ok(c) => c,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    bail!("`sipp` not found: install SIPp (Debian: apt-get install sip-tester)")
                }
                Err(e) => return Err(e).context("starting sipp"),
            };
            let mut uas = SippUas {
                child,
                addr: SocketAddr::from(([127, 0, 0, 1], port)),
                transport,
                media_port: media,
                dir,
            };
            uas.wait_ready()?;
            Ok(uas)
        }
    }

    fn wait_ready(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(status) = self.child.try_wait()? {
                let err = std::fs::read_to_string(self.dir.path().join("sipp.stderr"))
                    .unwrap_or_default();
                bail!("sipp exited at start ({status}): {}", err.trim());
            }
            let ready = match self.transport {
                Transport::Tcp => {
                    TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_ok()
                }
                // A UDP socket that is bound refuses a second bind on the same port.
                Transport::Udp => UdpSocket::bind(self.addr).is_err(),
            };
            if ready {
                // Give SIPp a moment to enter its main loop.
                std::thread::sleep(Duration::from_millis(200));
                if let Some(status) = self.child.try_wait()? {
                    bail!("sipp exited at start ({status})");
                }
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("sipp did not open {} within 5 s", self.addr);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The trunk URI that reaches this far end.
    pub fn trunk_uri(&self) -> String {
        format!(
            "sip:{};transport={}",
            self.addr,
            self.transport.param_name()
        )
    }

    /// Waits up to `timeout` for SIPp to exit by itself (after `-m N` calls) and returns its
    /// exit code (0: every call passed, 1: some failed), or `None` if it is still running.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The directory SIPp runs in (its logs land there).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for SippUas {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes a sample call list with `n` leads whose last digits cycle through every outcome of
/// [`OUTCOMES_SCENARIO`], plus one bad row to show row-level error reporting.
pub fn write_sample_leads(path: &Path, n: usize) -> anyhow::Result<()> {
    let names = [
        "answer",
        "answer",
        "busy",
        "no_answer",
        "decline",
        "not_found",
        "unavailable",
        "congestion",
        "remote_hangup",
        "early_media",
    ];
    let mut w = csv::Writer::from_path(path)?;
    w.write_record(["number", "name", "expected"])?;
    for i in 0..n {
        let number = format!("+1415555{:04}", 100 + i);
        let last = (100 + i) % 10;
        w.write_record([number.as_str(), &format!("Lead {}", i + 1), names[last]])?;
    }
    w.write_record(["not-a-number", "Bad Row", "rejected"])?;
    w.flush()?;
    Ok(())
}

/// The demo campaign file text.
pub fn demo_campaign(name: &str, trunk: &str) -> String {
    format!(
        r#"name = "{name}"
trunk = "{trunk}"
caller_id = "+14155550000"
caller_name = "outdial demo"
cps = 20
max_concurrent = 10
ring_timeout = 3
hold_time = 4
on_machine = "hangup"

[[reschedule_rules]]
disposition = "busy"
retry_after = 2
max_attempts = 2

[[reschedule_rules]]
disposition = "no_answer"
retry_after = 2
max_attempts = 2

[[reschedule_rules]]
disposition = "congestion"
retry_after = 1
max_attempts = 3
"#
    )
}

/// Where the demo keeps its files.
pub fn demo_dir() -> PathBuf {
    PathBuf::from("outdial-demo")
}
