//! Debian's Kamailio as a record-routing proxy in front of the SIPp far end, on 127.0.0.1
//! (`sip-fixtures/kamailio/kamailio.cfg`): once as our outbound proxy (pre-loaded Route,
//! RFC 3261 §8.1.2), once as the trunk itself over UDP and over TCP, with OPTIONS keep-alive.
//! In every case the dialog's ACK and BYE must follow the Record-Route back through it.

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use outdial::demo::{OUTCOMES_SCENARIO, SippUas, free_port};
use outdial::sip::message::Transport;

struct Kamailio {
    child: Child,
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Kamailio {
    /// Starts Kamailio in the foreground on a free port, relaying to `far_end` (host:port).
    fn start(far_end: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port(Transport::Tcp).unwrap();
        let cfg = include_str!("../sip-fixtures/kamailio/kamailio.cfg")
            .replace("@PORT@", &port.to_string())
            .replace("@FAREND@", far_end);
        let cfg_path = dir.path().join("kamailio.cfg");
        std::fs::write(&cfg_path, cfg).unwrap();
        let log = dir.path().join("kamailio.log");
        // Debian installs it in /usr/sbin, which is not on every user's PATH.
        let bin = if std::path::Path::new("/usr/sbin/kamailio").exists() {
            "/usr/sbin/kamailio"
        } else {
            "kamailio"
        };
        let child = Command::new(bin)
            .arg("-f")
            .arg(&cfg_path)
            .args(["-DD", "-E", "-m", "64", "-M", "8"])
            .arg("-P")
            .arg(dir.path().join("kamailio.pid"))
            .arg("-Y")
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("kamailio runs (Debian: apt-get install kamailio)");
        let k = Kamailio {
            child,
            port,
            log,
            _dir: dir,
        };
        // Ready when its TCP listener accepts (the UDP one is bound before it).
        let t0 = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "kamailio did not start: {}",
                k.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        k
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Lines `in-dialog METHOD` the proxy logged for a Call-ID.
    fn in_dialog(&self, method: &str, call_id: &str) -> usize {
        self.log_text()
            .lines()
            .filter(|l| l.contains(&format!("in-dialog {method} {call_id}")))
            .count()
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        // SIGTERM lets the main process stop its children.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

/// (digit, disposition, status) for the outcomes checked through the proxy.
const OUTCOMES: [(u32, &str, u16); 4] = [
    (0, "answered", 200),
    (2, "busy", 486),
    (3, "no_answer", 487),
    (8, "answered", 200),
];

async fn through_proxy(
    trunk_line: &str,
    k: &Kamailio,
    name: &str,
    extra: &str,
) -> outdial::engine::core::EngineStats {
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "name = \"{name}\"\n{trunk_line}\ncaller_id = \"+14155550000\"\ncps = 10\n\
max_concurrent = 4\nring_timeout = 2\nhold_time = 2\n{extra}\n[amd]\nprofile = \"off\"\n"
    );
    let numbers: Vec<_> = OUTCOMES.iter().map(|(d, ..)| number(*d, 0)).collect();
    let (out, _db) = run_campaign(dir.path(), &toml, &numbers).await;
    for (digit, disposition, status) in OUTCOMES {
        let l = lead(&out.report.leads, &number(digit, 0));
        let a = only_attempt(l);
        let ctx = format!("{name} digit {digit}: {a:?}\n{}", k.log_text());
        assert_eq!(a.disposition.as_deref(), Some(disposition), "{ctx}");
        assert_eq!(a.sip_status, Some(status), "{ctx}");
        let call_id = a.call_id.as_deref().unwrap();
        if status == 200 {
            // The ACK of the 2xx and the BYE (ours for digit 0, the far end's for 8) went
            // through the proxy: it Record-Routed the dialog.
            assert_eq!(k.in_dialog("ACK", call_id), 1, "{ctx}");
            assert_eq!(k.in_dialog("BYE", call_id), 1, "{ctx}");
        }
    }
    assert_eq!(out.engine.parse_errors, 0);
    out.engine
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kamailio_as_outbound_proxy() {
    let uas = SippUas::start(OUTCOMES_SCENARIO, Transport::Udp, &[]).unwrap();
    let k = Kamailio::start(&uas.addr.to_string());
    through_proxy(
        &format!(
            "trunk = \"{}\"\noutbound_proxy = \"sip:127.0.0.1:{};lr\"",
            uas.trunk_uri(),
            k.port
        ),
        &k,
        "kamailio-outbound-proxy",
        "",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kamailio_as_the_trunk_over_udp_and_tcp_with_keepalive() {
    let uas = SippUas::start(OUTCOMES_SCENARIO, Transport::Udp, &[]).unwrap();
    let k = Kamailio::start(&uas.addr.to_string());
    for t in ["udp", "tcp"] {
        let stats = through_proxy(
            &format!("trunk = \"sip:127.0.0.1:{};transport={t}\"", k.port),
            &k,
            &format!("kamailio-trunk-{t}"),
            "keepalive_interval = 1",
        )
        .await;
        let trunk = &stats.trunks[0];
        assert!(trunk.pings >= 1, "{t}: {trunk:?}");
        assert_eq!(trunk.ping_failures, 0, "{t}: {trunk:?}");
        assert!(trunk.up);
    }
    let pings = k
        .log_text()
        .lines()
        .filter(|l| l.contains("initial OPTIONS"))
        .count();
    assert_eq!(
        pings, 0,
        "pings to the proxy are answered by it, not relayed"
    );
}
