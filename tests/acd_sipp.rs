//! The ACD end to end against real peers on 127.0.0.1: SIPp as the trunk's far end (the
//! customers), SIPp as agents' phones (a REGISTER with digest authentication, then a UAS that
//! answers offered calls and streams audio), and tshark counting the RTP that reaches each
//! SIPp end.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use outdial::demo::{SippUas, free_port};
use outdial::runner::RunOutcome;
use outdial::sip::message::Transport;
use outdial::store::Store;

const PHONE: &str = include_str!("../sip-fixtures/scenarios/agent_phone.xml");
const NOANSWER: &str = include_str!("../sip-fixtures/scenarios/agent_phone_noanswer.xml");
const CUSTOMER: &str = include_str!("../sip-fixtures/scenarios/uas_stream_clip.xml");

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("sip-fixtures/scenarios")
        .join(name)
}

/// The trunk's far end for ACD tests: customers who answer and talk (a 440 Hz tone, µ-law)
/// until our BYE; `calls` calls, then SIPp exits.
fn customers(dir: &Path, transport: Transport, calls: u32) -> SippUas {
    let clip = tone(dir, "customer.wav", "u-law", 440, 3.0);
    SippUas::start(
        &CUSTOMER.replace("@CLIP@", clip.to_str().unwrap()),
        transport,
        &["-m", &calls.to_string()],
    )
    .unwrap()
}

/// An agent phone: answers with `codec` (0/8), streams `clip`, and hangs up after `talk_ms`
/// (`Some`) or waits for our BYE (`None`); `calls` calls, then SIPp exits.
fn phone(codec: u8, clip: &Path, talk_ms: Option<u32>, calls: u32) -> SippUas {
    let mut s = PHONE
        .replace("@CODEC@", &codec.to_string())
        .replace("@CODEC_NAME@", if codec == 8 { "PCMA" } else { "PCMU" })
        .replace("@CLIP@", clip.to_str().unwrap());
    match talk_ms {
        Some(ms) => {
            s = s
                .replace("<!--BYE", "")
                .replace("BYE-->", "")
                .replace("@TALK_MS@", &ms.to_string())
        }
        None => s = s.replace("<!--WAIT", "").replace("WAIT-->", ""),
    }
    SippUas::start(&s, Transport::Udp, &["-m", &calls.to_string()]).unwrap()
}

fn phone_not_taking(block: &str, calls: u32) -> SippUas {
    let s = NOANSWER
        .replace(&format!("<!--{block}"), "")
        .replace(&format!("{block}-->"), "");
    SippUas::start(&s, Transport::Udp, &["-m", &calls.to_string()]).unwrap()
}

/// Every phone's SIPp scenario completed (exit 0 within 10 s).
fn assert_phones_done(phones: &mut [SippUas]) {
    for p in phones {
        assert_eq!(
            p.wait_exit(Duration::from_secs(10)),
            Some(0),
            "{}",
            p.dir().display()
        );
    }
}

/// Registers `agent` (Contact: the phone's port) with the engine at `engine_port`; returns
/// SIPp's exit status (0: the final response was `final_status`).
fn register(
    engine_port: u16,
    agent: &str,
    password: &str,
    contact_port: u16,
    expires: u32,
    final_status: u16,
) -> i32 {
    let port = free_port(Transport::Udp).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("register.xml");
    let text = std::fs::read_to_string(fixture("agent_register.xml")).unwrap();
    std::fs::write(
        &scenario,
        text.replace("\"[final]\"", &format!("\"{final_status}\"")),
    )
    .unwrap();
    let out = Command::new("sipp")
        .arg("-sf")
        .arg(&scenario)
        .args([
            "-i",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-t",
            "u1",
            "-m",
            "1",
        ])
        .args(["-s", agent, "-au", agent, "-ap", password])
        .args(["-key", "contact_port", &contact_port.to_string()])
        .args(["-key", "expires", &expires.to_string()])
        .args(["-nostdin", "-timeout", "10s", "-timeout_error"])
        .arg(format!("127.0.0.1:{engine_port}"))
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("sipp runs");
    if !out.status.success() {
        eprintln!("REGISTER {agent}: {}", String::from_utf8_lossy(&out.stderr));
        for e in std::fs::read_dir(dir.path()).unwrap().flatten() {
            eprintln!(
                "{}: {}",
                e.path().display(),
                std::fs::read_to_string(e.path()).unwrap_or_default()
            );
        }
    }
    out.status.code().unwrap_or(-1)
}

/// A new API token of agent `agent`'s own, stored in the campaign's database in `dir`.
async fn agent_token(dir: &Path, agent: &str) -> String {
    let store = Store::open(&dir.join("outdial.db")).await.unwrap();
    let token = outdial::api::auth::new_token();
    store
        .create_token(agent, "agent", Some(agent), &token)
        .await
        .unwrap();
    token
}

/// Once agent 1001 is on its call (and 300 ms into it), its blind transfer to `target`
/// through the run's API at `base` with its own `token`: accepted (200).
async fn transfer_once_on_call(base: String, token: String, target: String) {
    let http = reqwest::Client::new();
    agent_until(&http, &base, &token, "1001", |v| v["state"] == "on_call").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = http
        .post(format!("{base}/v1/agents/1001/call/transfer"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"target": target}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
}

/// Waits until something (the engine) holds UDP `port` on 127.0.0.1.
fn wait_bound(port: u16) {
    let t0 = Instant::now();
    while std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "the engine never bound {port}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// tshark capturing loopback traffic that matches `filter` (BPF) into `file`, started and
/// ready (it printed "Capturing on").
fn tshark(filter: &str, file: &Path) -> Child {
    let mut child = Command::new("tshark")
        .args(["-i", "lo", "-f", filter, "-w"])
        .arg(file)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tshark (Debian: tshark) captures the RTP");
    use std::io::Read;
    let mut err = child.stderr.take().unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 256];
    while !String::from_utf8_lossy(&seen).contains("Capturing on") {
        let n = err.read(&mut buf).unwrap_or(0);
        assert!(n > 0, "tshark failed: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
    child
}

/// Lets the last packets in (300 ms), then stops tshark (SIGINT: it writes out its file).
fn stop_tshark(child: &mut Child) {
    std::thread::sleep(Duration::from_millis(300));
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

/// tshark counting UDP packets sent to some ports on loopback.
struct Capture {
    child: Child,
    ports: Vec<u16>,
    file: PathBuf,
    _dir: tempfile::TempDir,
}

impl Capture {
    fn start(ports: &[u16]) -> Capture {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("rtp.pcap");
        // SIPp gives each further call of an `rtp_stream` scenario the next media port up,
        // so count a few ports from each; only 20 ms G.711 packets (UDP length 8 + 12 + 160).
        let filter = format!(
            "({}) and udp[4:2] = 180",
            ports
                .iter()
                .map(|p| format!("udp dst portrange {p}-{}", p + 8))
                .collect::<Vec<_>>()
                .join(" or ")
        );
        let child = tshark(&filter, &file);
        Capture {
            child,
            ports: ports.to_vec(),
            file,
            _dir: dir,
        }
    }

    /// Stops the capture; packets per destination port (`port..=port+8` summed under `port`
    /// for every port the capture was started with).
    fn stop(mut self) -> HashMap<u16, u64> {
        stop_tshark(&mut self.child);
        let out = Command::new("tshark")
            .arg("-r")
            .arg(&self.file)
            .args(["-T", "fields", "-e", "udp.dstport"])
            .output()
            .unwrap();
        let mut counts = HashMap::new();
        for l in String::from_utf8_lossy(&out.stdout).lines() {
            if let Ok(p) = l.trim().parse::<u16>() {
                let base = self
                    .ports
                    .iter()
                    .copied()
                    .find(|b| (*b..=b + 8).contains(&p));
                *counts.entry(base.unwrap_or(p)).or_insert(0) += 1;
            }
        }
        counts
    }
}

/// A campaign with agents: `acd` is the body of the `[acd]` table (agents included).
fn acd_toml(name: &str, trunk: &str, engine_port: u16, extra: &str, acd: &str) -> String {
    campaign_toml(
        name,
        trunk,
        &format!(
            "local_address = \"127.0.0.1:{engine_port}\"\nring_timeout = 10\nhold_time = 30\nmedia_timeout = 0\n{extra}\n[amd]\nprofile = \"off\"\n[acd]\n{acd}"
        ),
    )
}

async fn events(db: &Path, kind: &str) -> Vec<serde_json::Value> {
    let store = Store::open(db).await.unwrap();
    let rows: Vec<String> =
        sqlx::query_scalar("SELECT data FROM call_events WHERE kind = ? ORDER BY id")
            .bind(kind)
            .fetch_all(store.pool())
            .await
            .unwrap();
    rows.iter()
        .map(|r| serde_json::from_str(r).unwrap())
        .collect()
}

async fn agent_states(db: &Path, agent: &str) -> Vec<(String, String)> {
    let store = Store::open(db).await.unwrap();
    store
        .agent_events()
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.0 == agent)
        .map(|e| (e.1, e.2))
        .collect()
}

/// Runs the campaign in the background, calls `registrations` with the engine's port once the
/// engine listens (SIPp REGISTERs, blocking), and returns the outcome.
async fn run_registering(
    dir: &Path,
    toml: String,
    numbers: Vec<String>,
    engine_port: u16,
    registrations: impl FnOnce(u16) + Send + 'static,
) -> (RunOutcome, PathBuf) {
    let d = dir.to_path_buf();
    let run = tokio::spawn(async move { run_campaign(&d, &toml, &numbers).await });
    tokio::task::spawn_blocking(move || {
        wait_bound(engine_port);
        registrations(engine_port);
    })
    .await
    .unwrap();
    run.await.unwrap()
}

/// [`run_registering`] with agents (id, password, phone port) that must register (200).
async fn run_with_agents(
    dir: &Path,
    toml: String,
    numbers: Vec<String>,
    engine_port: u16,
    agents: Vec<(&'static str, &'static str, u16)>,
) -> (RunOutcome, PathBuf) {
    run_registering(dir, toml, numbers, engine_port, move |port| {
        for (id, pw, contact) in agents {
            assert_eq!(
                register(port, id, pw, contact, 300, 200),
                0,
                "agent {id} registers"
            );
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_call_bridges_audio_both_ways_with_transcoding() {
    let dir = tempfile::tempdir().unwrap();
    let agent_clip = tone(dir.path(), "agent.wav", "a-law", 660, 3.0);
    // Two customers (PCMU) in turn, one agent answering in PCMA who hangs up after 1.5 s.
    let mut customers = customers(dir.path(), Transport::Udp, 2);
    let mut agent = phone(8, &agent_clip, Some(1500), 2);
    let cap = Capture::start(&[customers.media_port, agent.media_port]);
    let port = free_port(Transport::Udp).unwrap();
    let toml = acd_toml(
        "acd-per-call",
        &customers.trunk_uri(),
        port,
        "max_concurrent = 1",
        "mode = \"per_call\"\nwrap_up = 0\nmax_wait = 5\n[[acd.agents]]\nid = \"1001\"\npassword = \"s3cret-1001\"\n",
    );
    let (out, db) = run_with_agents(
        dir.path(),
        toml,
        vec![number(0, 1), number(0, 2)],
        port,
        vec![("1001", "s3cret-1001", agent.addr.port())],
    )
    .await;
    let counts = cap.stop();
    for l in &out.report.leads {
        let a = only_attempt(l);
        assert_eq!(a.disposition.as_deref(), Some("answered"), "{a:?}");
        assert_eq!(a.detail.as_deref(), Some("agent_hangup"), "{a:?}");
    }
    let connected = events(&db, "connected").await;
    assert_eq!(connected.len(), 2, "{connected:?}");
    for c in &connected {
        assert_eq!(c["agent"], "1001");
        assert_eq!(c["mode"], "per_call");
        assert_eq!(c["transcoding"], true);
        assert_ne!(c["agent_call_id"], serde_json::Value::Null);
    }
    assert_eq!(events(&db, "queued").await.len(), 2);
    assert_eq!(events(&db, "agent_offered").await.len(), 2);
    // Audio both ways, counted where it arrives: the customer's SIPp got the agent's voice,
    // the agent's SIPp got the customer's (1.5 s of talk ≈ 75 packets each way per call).
    let to_customer = counts.get(&customers.media_port).copied().unwrap_or(0);
    let to_agent = counts.get(&agent.media_port).copied().unwrap_or(0);
    // At least one call's worth at each end (SIPp moves a later call's `rtp_stream` to another
    // port, not always inside the range captured); every call's relaying is checked per call
    // from the engine's statistics just below.
    assert!(
        to_customer >= 50,
        "packets to the customer: {to_customer} ({counts:?})"
    );
    assert!(
        to_agent >= 50,
        "packets to the agent: {to_agent} ({counts:?})"
    );
    // The engine relayed them both ways: each leg's statistics (customer and agent).
    let stats = events(&db, "media_stats").await;
    let legs = |leg: &str| stats.iter().filter(|s| s["leg"] == leg).count();
    assert_eq!((legs("customer"), legs("agent")), (2, 2), "{stats:?}");
    assert!(
        stats.iter().all(|s| s["relayed"].as_u64().unwrap() > 50),
        "{stats:?}"
    );
    let states: Vec<String> = agent_states(&db, "1001")
        .await
        .into_iter()
        .map(|s| s.0)
        .collect();
    assert_eq!(
        states,
        [
            "available",
            "reserved",
            "on_call",
            "available",
            "reserved",
            "on_call",
            "available"
        ],
    );
    let acd = out.engine.acd.as_ref().unwrap();
    assert_eq!((acd.queued, acd.connected, acd.abandoned), (2, 2, 0));
    assert_eq!(acd.agents[0].handled, 2);
    assert_eq!(
        customers.wait_exit(Duration::from_secs(10)),
        Some(0),
        "customer SIPp: {}",
        customers.dir().display()
    );
    assert_eq!(
        agent.wait_exit(Duration::from_secs(10)),
        Some(0),
        "agent SIPp: {}",
        agent.dir().display()
    );
}

const OUTCOMES: &str = include_str!("../sip-fixtures/scenarios/uas_outcomes.xml");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_who_does_not_answer_is_skipped_and_the_next_one_gets_the_call() {
    let dir = tempfile::tempdir().unwrap();
    let agent_clip = tone(dir.path(), "agent.wav", "u-law", 660, 3.0);
    let mut customers = customers(dir.path(), Transport::Udp, 1);
    // 1001 rings until the offer times out (CANCEL); 1002 answers and hangs up after 0.5 s.
    let mut ringing = phone_not_taking("RING", 1);
    let mut answering = phone(0, &agent_clip, Some(500), 1);
    let port = free_port(Transport::Udp).unwrap();
    let toml = acd_toml(
        "acd-reoffer",
        &customers.trunk_uri(),
        port,
        "",
        "mode = \"per_call\"\nstrategy = \"round_robin\"\noffer_timeout = 1\nmax_wait = 8\nwrap_up = 0\n\
         [[acd.agents]]\nid = \"1001\"\npassword = \"pw-1001\"\n[[acd.agents]]\nid = \"1002\"\npassword = \"pw-1002\"\n",
    );
    let (out, db) = run_with_agents(
        dir.path(),
        toml,
        vec![number(0, 1)],
        port,
        vec![
            ("1001", "pw-1001", ringing.addr.port()),
            ("1002", "pw-1002", answering.addr.port()),
        ],
    )
    .await;
    let a = only_attempt(&out.report.leads[0]);
    assert_eq!(a.disposition.as_deref(), Some("answered"), "{a:?}");
    let offered: Vec<String> = events(&db, "agent_offered")
        .await
        .iter()
        .map(|e| e["agent"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(offered, ["1001", "1002"]);
    let failed = events(&db, "offer_failed").await;
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["agent"], "1001");
    assert_eq!(failed[0]["sip_status"], 487);
    let connected = events(&db, "connected").await;
    assert_eq!(connected[0]["agent"], "1002");
    assert!(
        connected[0]["wait_ms"].as_u64().unwrap() >= 1000,
        "{connected:?}"
    );
    // 1001's miss is counted; it is available again (one miss < max_misses).
    let s1: Vec<(String, String)> = agent_states(&db, "1001").await;
    assert_eq!(
        s1,
        [
            ("available".to_string(), "registered".to_string()),
            ("reserved".into(), "offered".into()),
            ("available".into(), "offer_missed".into()),
        ]
    );
    assert_eq!(out.engine.acd.as_ref().unwrap().agents[0].missed, 1);
    for (name, s) in [
        ("customer", &mut customers),
        ("ringing agent", &mut ringing),
        ("answering agent", &mut answering),
    ] {
        assert_eq!(
            s.wait_exit(Duration::from_secs(10)),
            Some(0),
            "{name} SIPp: {}",
            s.dir().display()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ring_all_rings_every_available_agent_and_withdraws_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let agent_clip = tone(dir.path(), "agent.wav", "u-law", 660, 3.0);
    let mut customers = customers(dir.path(), Transport::Udp, 1);
    // Both phones ring at once: 1001 never answers, 1002 answers (and hangs up after 0.5 s);
    // 1001's ringing INVITE is CANCELled as soon as 1002 answers, long before offer_timeout.
    let mut ringing = phone_not_taking("RING", 1);
    let mut answering = phone(0, &agent_clip, Some(500), 1);
    let port = free_port(Transport::Udp).unwrap();
    let toml = acd_toml(
        "acd-ring-all",
        &customers.trunk_uri(),
        port,
        "",
        "mode = \"per_call\"\nstrategy = \"ring_all\"\noffer_timeout = 8\nmax_wait = 8\nwrap_up = 0\n\
         [[acd.agents]]\nid = \"1001\"\npassword = \"pw-1001\"\n[[acd.agents]]\nid = \"1002\"\npassword = \"pw-1002\"\n",
    );
    let (out, db) = run_with_agents(
        dir.path(),
        toml,
        vec![number(0, 1)],
        port,
        vec![
            ("1001", "pw-1001", ringing.addr.port()),
            ("1002", "pw-1002", answering.addr.port()),
        ],
    )
    .await;
    let a = only_attempt(&out.report.leads[0]);
    assert_eq!(a.disposition.as_deref(), Some("answered"), "{a:?}");
    let mut offered: Vec<String> = events(&db, "agent_offered")
        .await
        .iter()
        .map(|e| e["agent"].as_str().unwrap().to_string())
        .collect();
    offered.sort();
    assert_eq!(
        offered,
        ["1001", "1002"],
        "both phones were offered the call"
    );
    let connected = events(&db, "connected").await;
    assert_eq!(connected.len(), 1, "{connected:?}");
    assert_eq!(connected[0]["agent"], "1002");
    // A withdrawn offer is not an offer_failed on the customer's call, nor the agent's miss.
    assert!(events(&db, "offer_failed").await.is_empty());
    let s1: Vec<(String, String)> = agent_states(&db, "1001").await;
    assert_eq!(
        s1,
        [
            ("available".to_string(), "registered".to_string()),
            ("reserved".into(), "offered".into()),
            ("available".into(), "offer_withdrawn".into()),
        ]
    );
    let acd = out.engine.acd.as_ref().unwrap();
    assert_eq!((acd.agents[0].missed, acd.agents[0].handled), (0, 0));
    assert_eq!((acd.agents[1].missed, acd.agents[1].handled), (0, 1));
    for (name, s) in [
        ("customer", &mut customers),
        ("ringing agent", &mut ringing),
        ("answering agent", &mut answering),
    ] {
        assert_eq!(
            s.wait_exit(Duration::from_secs(10)),
            Some(0),
            "{name} SIPp: {}",
            s.dir().display()
        );
    }
}

/// A phone that registers over TCP and takes its calls on that same connection, as phones
/// behind NAT do: one SIPp (`-t t1`) runs the REGISTER scenario, then stays connected for
/// `stay_ms`, and answers the engine's INVITEs on the connection with the phone scenario as
/// its out-of-call scenario (`-oocsf`). Returns the SIPp process and its directory.
fn tcp_phone(
    engine_port: u16,
    agent: &str,
    password: &str,
    clip: &Path,
    talk_ms: u32,
    stay_ms: u32,
) -> (Child, tempfile::TempDir) {
    let port = free_port(Transport::Tcp).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let register = std::fs::read_to_string(fixture("agent_register.xml"))
        .unwrap()
        .replace(
            "<recv response=\"[final]\"/>",
            &format!("<recv response=\"200\"/>\n  <pause milliseconds=\"{stay_ms}\"/>"),
        );
    std::fs::write(dir.path().join("register.xml"), register).unwrap();
    let phone = PHONE
        .replace("@CODEC@", "0")
        .replace("@CODEC_NAME@", "PCMU")
        .replace("@CLIP@", clip.to_str().unwrap())
        .replace("<!--BYE", "")
        .replace("BYE-->", "")
        .replace("@TALK_MS@", &talk_ms.to_string());
    std::fs::write(dir.path().join("phone.xml"), phone).unwrap();
    let media = free_port(Transport::Udp).unwrap();
    let child = Command::new("sipp")
        .args(["-sf", "register.xml", "-oocsf", "phone.xml"])
        .args(["-i", "127.0.0.1", "-p", &port.to_string(), "-t", "t1"])
        .args(["-mp", &media.to_string(), "-m", "1"])
        .args(["-s", agent, "-au", agent, "-ap", password])
        .args(["-key", "contact_port", &port.to_string()])
        .args(["-key", "expires", "300"])
        .args(["-nostdin", "-timeout", "30s", "-timeout_error"])
        .args(["-trace_err", "-trace_msg"])
        .arg(format!("127.0.0.1:{engine_port}"))
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("sipp.stderr.log")).unwrap())
        .spawn()
        .expect("sipp runs");
    (child, dir)
}

/// Waits up to 30 s for a SIPp child to exit (killed after that); its exit code.
fn child_exit(c: &mut Child) -> Option<i32> {
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(30) {
        if let Some(st) = c.try_wait().unwrap() {
            return st.code();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = c.kill();
    None
}

fn dump_dir(dir: &Path) -> String {
    let mut s = String::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        if e.path().extension().is_some_and(|x| x == "log") {
            s += &format!(
                "--- {}\n{}\n",
                e.path().display(),
                std::fs::read_to_string(e.path()).unwrap_or_default()
            );
        }
    }
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_registered_over_tcp_takes_calls_on_its_connection() {
    let dir = tempfile::tempdir().unwrap();
    let agent_clip = tone(dir.path(), "agent.wav", "u-law", 660, 3.0);
    let mut customers = customers(dir.path(), Transport::Udp, 1);
    let port = free_port(Transport::Udp).unwrap();
    let toml = acd_toml(
        "acd-tcp-agent",
        &customers.trunk_uri(),
        port,
        "",
        "mode = \"per_call\"\nwrap_up = 0\nmax_wait = 8\n[[acd.agents]]\nid = \"1001\"\npassword = \"pw-1001\"\n",
    );
    let clip = agent_clip.clone();
    let agent = std::sync::Arc::new(std::sync::Mutex::new(None));
    let slot = agent.clone();
    let (out, db) = run_registering(dir.path(), toml, vec![number(0, 1)], port, move |p| {
        *slot.lock().unwrap() = Some(tcp_phone(p, "1001", "pw-1001", &clip, 1000, 6000));
    })
    .await;
    let (mut child, agent_dir) = agent.lock().unwrap().take().unwrap();
    let a = only_attempt(&out.report.leads[0]);
    assert_eq!(a.disposition.as_deref(), Some("answered"), "{a:?}");
    assert_eq!(a.detail.as_deref(), Some("agent_hangup"), "{a:?}");
    let connected = events(&db, "connected").await;
    assert_eq!(connected.len(), 1, "{connected:?}");
    assert_eq!(connected[0]["agent"], "1001");
    let states = agent_states(&db, "1001").await;
    assert_eq!(
        states[0],
        ("available".to_string(), "registered".to_string())
    );
    // The phone's SIPp exits when the engine, done with its call list, closes the connection
    // (exit code 1 for that); what it logged shows the call went over its TCP connection.
    tokio::task::spawn_blocking(move || child_exit(&mut child))
        .await
        .unwrap();
    let log = std::fs::read_dir(agent_dir.path())
        .unwrap()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().ends_with("_messages.log"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .unwrap_or_default();
    let received: Vec<&str> = log
        .split("-----------------------------------------------")
        .filter(|b| b.contains("TCP message received"))
        .collect();
    let invite = received
        .iter()
        .find(|b| b.contains("INVITE sip:1001@"))
        .unwrap_or_else(|| panic!("no INVITE over TCP: {}", dump_dir(agent_dir.path())));
    assert!(invite.contains("Via: SIP/2.0/TCP"), "{invite}");
    assert!(
        received
            .iter()
            .any(|b| b.contains("SIP/2.0 200 OK") && b.contains("CSeq: 1 BYE")),
        "the phone's BYE was answered on its connection: {}",
        dump_dir(agent_dir.path())
    );
    assert_eq!(customers.wait_exit(Duration::from_secs(10)), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_tcp_trunk_agents_register_over_udp() {
    let dir = tempfile::tempdir().unwrap();
    let agent_clip = tone(dir.path(), "agent.wav", "u-law", 660, 3.0);
    let mut customers = customers(dir.path(), Transport::Tcp, 1);
    let mut answering = phone(0, &agent_clip, Some(500), 1);
    let port = free_port(Transport::Udp).unwrap();
    let toml = acd_toml(
        "acd-tcp-trunk",
        &customers.trunk_uri(),
        port,
        "",
        "mode = \"per_call\"\nwrap_up = 0\nmax_wait = 8\n[[acd.agents]]\nid = \"1001\"\npassword = \"pw-1001\"\n",
    );
    let (out, db) = run_with_agents(
        dir.path(),
        toml,
        vec![number(0, 1)],
        port,
        vec![("1001", "pw-1001", answering.addr.port())],
    )
    .await;
    let a = only_attempt(&out.report.leads[0]);
    assert_eq!(a.disposition.as_deref(), Some("answered"), "{a:?}");
    assert_eq!(a.detail.as_deref(), Some("agent_hangup"), "{a:?}");
    assert_eq!(events(&db, "connected").await.len(), 1);
    for (name, s) in [("customer", &mut customers), ("agent", &mut answering)] {
        assert_eq!(
            s.wait_exit(Duration::from_secs(10)),
            Some(0),
            "{name} SIPp: {}",
            s.dir().display()
        );
    }
}

/// Polls `GET /v1/agents/{id}` until `pred` holds (30 s at most).
async fn agent_until(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    id: &str,
    pred: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let t0 = Instant::now();
    let mut last = serde_json::Value::Null;
    loop {
        if let Ok(r) = http
            .get(format!("{base}/v1/agents/{id}"))
            .bearer_auth(token)
            .send()
            .await
            && r.status() == 200
        {
            let v: serde_json::Value = r.json().await.unwrap();
            if pred(&v) {
                return v;
            }
            last = v;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "agent {id} never got there: {last}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrap_up_lasts_until_the_agent_sets_the_disposition_through_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let agent_clip = tone(dir.path(), "agent.wav", "u-law", 660, 3.0);
    let mut customers = customers(dir.path(), Transport::Udp, 2);
    // The agent takes both calls, hanging up each after 0.5 s.
    let mut answering = phone(0, &agent_clip, Some(500), 2);
    let port = free_port(Transport::Udp).unwrap();
    let api_port = free_port(Transport::Tcp).unwrap();
    let toml = acd_toml(
        "acd-dispositions",
        &customers.trunk_uri(),
        port,
        &format!("max_concurrent = 1\napi_listen = \"127.0.0.1:{api_port}\""),
        "mode = \"per_call\"\nwrap_up = 0\nmax_wait = 20\nmandatory_disposition = true\n\
         dispositions = [\"sale\", \"no_sale\"]\n\
         [[acd.agents]]\nid = \"1001\"\npassword = \"pw-1001\"\n[[acd.agents]]\nid = \"1002\"\npassword = \"pw-1002\"\n",
    );
    // Tokens: agent 1001's own, agent 1002's, and a revoked-looking unknown one.
    let mine = agent_token(dir.path(), "1001").await;
    let theirs = agent_token(dir.path(), "1002").await;
    let base = format!("http://127.0.0.1:{api_port}");
    let api = {
        let base = base.clone();
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            let url = format!("{base}/v1/agents/1001/disposition");
            // First call over: wrap-up until the disposition, whatever `wrap_up` says.
            let v = agent_until(&http, &base, &mine, "1001", |v| {
                v["awaiting_disposition"] == true
            })
            .await;
            assert_eq!(v["state"], "wrap_up");
            let status = |r: reqwest::Response| r.status().as_u16();
            // No token, another agent's token, a disposition not in the list, a bad body.
            let r = http
                .put(&url)
                .json(&serde_json::json!({"disposition": "sale"}))
                .send()
                .await
                .unwrap();
            assert_eq!(status(r), 401);
            let r = http
                .put(&url)
                .bearer_auth(&theirs)
                .json(&serde_json::json!({"disposition": "sale"}))
                .send()
                .await
                .unwrap();
            assert_eq!(status(r), 403);
            let r = http
                .put(&url)
                .bearer_auth(&mine)
                .json(&serde_json::json!({"disposition": "bogus"}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), 422);
            let p: serde_json::Value = r.json().await.unwrap();
            assert_eq!(p["field"], "disposition", "{p}");
            let r = http
                .put(&url)
                .bearer_auth(&mine)
                .header("content-type", "application/json")
                .body("{\"disposition\":")
                .send()
                .await
                .unwrap();
            assert_eq!(status(r), 400);
            let still = agent_until(&http, &base, &mine, "1001", |_| true).await;
            assert_eq!(
                still["awaiting_disposition"], true,
                "refused requests change nothing"
            );
            let r = http
                .put(&url)
                .bearer_auth(&mine)
                .json(&serde_json::json!({"disposition": "sale", "note": "two units"}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), 200);
            // Second call over: a pause asked for during the wrap-up is taken with the
            // disposition.
            agent_until(&http, &base, &mine, "1001", |v| {
                v["awaiting_disposition"] == true && v["stats"]["handled"] == 2
            })
            .await;
            let r = http
                .put(format!("{base}/v1/agents/1001/state"))
                .bearer_auth(&mine)
                .json(&serde_json::json!({"state": "paused", "reason": "lunch"}))
                .send()
                .await
                .unwrap();
            let v: serde_json::Value = r.json().await.unwrap();
            assert_eq!(
                (v["state"].as_str(), v["pause_pending"].as_str()),
                (Some("wrap_up"), Some("lunch")),
                "{v}"
            );
            let r = http
                .put(&url)
                .bearer_auth(&mine)
                .json(&serde_json::json!({"disposition": "no_sale"}))
                .send()
                .await
                .unwrap();
            let v: serde_json::Value = r.json().await.unwrap();
            assert_eq!(
                (v["state"].as_str(), v["reason"].as_str()),
                (Some("paused"), Some("lunch")),
                "{v}"
            );
        })
    };
    let (out, db) = run_with_agents(
        dir.path(),
        toml,
        vec![number(0, 1), number(0, 2)],
        port,
        vec![("1001", "pw-1001", answering.addr.port())],
    )
    .await;
    api.await.expect("the API client's checks");
    for l in &out.report.leads {
        let a = only_attempt(l);
        assert_eq!(a.disposition.as_deref(), Some("answered"), "{a:?}");
    }
    let ds: Vec<String> = events(&db, "agent_disposition")
        .await
        .iter()
        .map(|e| e["disposition"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ds, ["sale", "no_sale"]);
    let store = Store::open(&db).await.unwrap();
    let stored: Vec<Option<String>> =
        sqlx::query_scalar("SELECT agent_disposition FROM attempts ORDER BY id")
            .fetch_all(store.pool())
            .await
            .unwrap();
    assert_eq!(
        stored,
        [Some("sale".to_string()), Some("no_sale".to_string())]
    );
    let reasons: Vec<(String, String)> = agent_states(&db, "1001").await;
    let wrap: Vec<&(String, String)> = reasons
        .iter()
        .filter(|(s, _)| s == "wrap_up" || s == "paused")
        .collect();
    assert_eq!(
        wrap,
        [
            &("wrap_up".to_string(), "call_ended".to_string()),
            &("wrap_up".to_string(), "call_ended".to_string()),
            &("paused".to_string(), "lunch".to_string()),
        ]
    );
    assert!(reasons.contains(&("available".to_string(), "disposition_set".to_string())));
    for (name, s) in [("customer", &mut customers), ("agent", &mut answering)] {
        assert_eq!(
            s.wait_exit(Duration::from_secs(10)),
            Some(0),
            "{name} SIPp: {}",
            s.dir().display()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_waiting_past_max_wait_hears_the_message_and_is_abandoned() {
    let dir = tempfile::tempdir().unwrap();
    let message = tone(dir.path(), "sorry.wav", "signed-integer", 500, 1.0);
    let mut customers = customers(dir.path(), Transport::Udp, 1);
    let mut ringing = phone_not_taking("RING", 1);
    let cap = Capture::start(&[customers.media_port]);
    let port = free_port(Transport::Udp).unwrap();
    let toml = acd_toml(
        "acd-abandon",
        &customers.trunk_uri(),
        port,
        "",
        &format!(
            "mode = \"per_call\"\nmax_wait = 1\noffer_timeout = 10\nmax_auth_failures = 3\nabandon_message_file = \"{}\"\n\
             [[acd.agents]]\nid = \"1001\"\npassword = \"right\"\n",
            message.display()
        ),
    );
    let contact = ringing.addr.port();
    let (out, db) = run_registering(dir.path(), toml, vec![number(0, 1)], port, move |port| {
        // A wrong password and an unknown user are refused with 403 …
        assert_eq!(register(port, "1001", "wrong", contact, 300, 403), 0);
        assert_eq!(register(port, "9999", "right", contact, 300, 403), 0);
        // … and the right one is accepted (2 failures < max_auth_failures: not blocked).
        assert_eq!(register(port, "1001", "right", contact, 300, 200), 0);
    })
    .await;
    let counts = cap.stop();
    let a = only_attempt(&out.report.leads[0]);
    assert_eq!(a.disposition.as_deref(), Some("abandoned"), "{a:?}");
    assert_eq!(a.detail.as_deref(), Some("abandoned"), "{a:?}");
    let ab = events(&db, "abandoned").await;
    assert_eq!(ab.len(), 1);
    assert_eq!(ab[0]["reason"], "max_wait");
    let wait = ab[0]["wait_ms"].as_u64().unwrap();
    assert!((1000..1500).contains(&wait), "{wait}");
    let played = events(&db, "playback_started").await;
    assert_eq!(played[0]["what"], "abandon");
    // The message (1 s = 50 packets) reached the customer's SIPp.
    let stats: Vec<_> = events(&db, "media_stats")
        .await
        .into_iter()
        .filter(|s| s["leg"] == "customer")
        .collect();
    assert_eq!(stats[0]["sent"], 50, "{stats:?}");
    assert!(
        counts.get(&customers.media_port).copied().unwrap_or(0) >= 50,
        "{counts:?}"
    );
    // The offer was withdrawn (CANCEL): not the agent's miss.
    let s: Vec<String> = agent_states(&db, "1001")
        .await
        .into_iter()
        .map(|s| s.1)
        .collect();
    assert_eq!(s, ["registered", "offered", "offer_withdrawn"]);
    let acd = out.engine.acd.as_ref().unwrap();
    assert_eq!((acd.queued, acd.connected, acd.abandoned), (1, 0, 1));
    assert_eq!(acd.registrar.auth_failures, 2);
    assert_eq!(
        out.report.summary.final_dispositions.get("abandoned"),
        Some(&1)
    );
    assert_eq!(customers.wait_exit(Duration::from_secs(10)), Some(0));
    assert_eq!(
        ringing.wait_exit(Duration::from_secs(10)),
        Some(0),
        "{}",
        ringing.dir().display()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registration_that_is_not_refreshed_expires() {
    let dir = tempfile::tempdir().unwrap();
    // The lead rings for 3 s (outcome 3: never answered): the agent's 1 s registration
    // expires meanwhile.
    let far = SippUas::start(OUTCOMES, Transport::Udp, &[]).unwrap();
    let phone_port = free_port(Transport::Udp).unwrap();
    let port = free_port(Transport::Udp).unwrap();
    let toml = campaign_toml(
        "acd-expire",
        &far.trunk_uri(),
        &format!(
            "local_address = \"127.0.0.1:{port}\"\nring_timeout = 3\n[amd]\nprofile = \"off\"\n[acd]\nmode = \"per_call\"\nmin_expires = 1\n[[acd.agents]]\nid = \"1001\"\npassword = \"pw\"\n"
        ),
    );
    let (_, db) = run_registering(dir.path(), toml, vec![number(3, 1)], port, move |port| {
        assert_eq!(register(port, "1001", "pw", phone_port, 1, 200), 0);
    })
    .await;
    assert_eq!(
        agent_states(&db, "1001").await,
        [
            ("available".to_string(), "registered".to_string()),
            ("offline".into(), "expired".into())
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_agents_are_bridged_at_once_on_their_standing_call() {
    let dir = tempfile::tempdir().unwrap();
    let agent_clip = tone(dir.path(), "agent.wav", "u-law", 660, 3.0);
    // Two customers who hang up 1 s after answering (outcome 8); one agent whose phone is
    // called once and stays up until the campaign ends.
    let mut customers = SippUas::start(OUTCOMES, Transport::Udp, &["-m", "2"]).unwrap();
    let mut agent = phone(0, &agent_clip, None, 1);
    let cap = Capture::start(&[customers.media_port]);
    let port = free_port(Transport::Udp).unwrap();
    let toml = acd_toml(
        "acd-persistent",
        &customers.trunk_uri(),
        port,
        "max_concurrent = 1",
        "wrap_up = 0\n[[acd.agents]]\nid = \"1001\"\npassword = \"pw\"\n",
    );
    let (out, db) = run_with_agents(
        dir.path(),
        toml,
        vec![number(8, 1), number(8, 2)],
        port,
        vec![("1001", "pw", agent.addr.port())],
    )
    .await;
    let counts = cap.stop();
    for l in &out.report.leads {
        let a = only_attempt(l);
        assert_eq!(a.disposition.as_deref(), Some("answered"), "{a:?}");
        assert_eq!(a.detail.as_deref(), Some("remote_bye"), "{a:?}");
    }
    let connected = events(&db, "connected").await;
    assert_eq!(connected.len(), 2);
    let login = connected[0]["agent_call_id"].clone();
    for c in &connected {
        assert_eq!(c["mode"], "persistent");
        assert_eq!(
            c["agent_call_id"], login,
            "one standing call for both customers"
        );
        assert!(c["wait_ms"].as_u64().unwrap() < 100, "bridged at once: {c}");
    }
    // The agent's voice reached both customers (1 s of talk each ≈ 50 packets).
    assert!(
        counts.get(&customers.media_port).copied().unwrap_or(0) >= 60,
        "{counts:?}"
    );
    let s: Vec<String> = agent_states(&db, "1001")
        .await
        .into_iter()
        .map(|s| s.0)
        .collect();
    assert_eq!(
        s,
        [
            "available",
            "reserved",
            "on_call",
            "available",
            "reserved",
            "on_call",
            "available",
            "offline"
        ]
    );
    assert_eq!(customers.wait_exit(Duration::from_secs(10)), Some(0));
    // The standing call ended with our BYE at the end of the campaign.
    assert_eq!(
        agent.wait_exit(Duration::from_secs(10)),
        Some(0),
        "{}",
        agent.dir().display()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_static_agent_is_reached_through_the_trunk() {
    let dir = tempfile::tempdir().unwrap();
    // The trunk's far end answers everything by number: the static agent's extension (last
    // digit 0: answers, waits for our BYE) and two customers who hang up after 1 s (8).
    let mut far = SippUas::start(OUTCOMES, Transport::Udp, &["-m", "3"]).unwrap();
    let port = free_port(Transport::Udp).unwrap();
    let toml = acd_toml(
        "acd-static",
        &far.trunk_uri(),
        port,
        "max_concurrent = 1",
        "wrap_up = 0\n[[acd.agents]]\nid = \"ext-200\"\nuri = \"sip:2000@127.0.0.1\"\n",
    );
    let (out, db) = run_campaign(dir.path(), &toml, &[number(8, 1), number(8, 2)]).await;
    for l in &out.report.leads {
        let a = only_attempt(l);
        assert_eq!(a.disposition.as_deref(), Some("answered"), "{a:?}");
    }
    let connected = events(&db, "connected").await;
    assert_eq!(connected.len(), 2, "{connected:?}");
    for c in &connected {
        assert_eq!(c["agent"], "ext-200");
        assert_eq!(c["mode"], "persistent");
        assert_eq!(c["agent_call_id"], connected[0]["agent_call_id"]);
    }
    let states = agent_states(&db, "ext-200").await;
    assert_eq!(
        states[0],
        ("available".to_string(), "login_call_up".to_string())
    );
    assert_eq!(
        far.wait_exit(Duration::from_secs(10)),
        Some(0),
        "the trunk's SIPp (login call and two customers): {}",
        far.dir().display()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_predictive_campaign_runs_to_completion_within_its_caps() {
    let dir = tempfile::tempdir().unwrap();
    let agent_clip = tone(dir.path(), "agent.wav", "u-law", 660, 3.0);
    // The far end: people who talk 1 s and hang up (8), busy lines (2), no answer (3).
    let far = SippUas::start(OUTCOMES, Transport::Udp, &[]).unwrap();
    // Three agents on standing (persistent) calls.
    let mut phones: Vec<SippUas> = (0..3).map(|_| phone(0, &agent_clip, None, 1)).collect();
    let port = free_port(Transport::Udp).unwrap();
    let toml = acd_toml(
        "predictive",
        &far.trunk_uri(),
        port,
        "max_concurrent = 12\ncps = 20\n\
         [endpoint]\ntype = \"predictive\"\nabandon_cap = 0.03\nmax_waiting_calls = 2\n",
        "wrap_up = 0\nmax_wait = 5\n\
         [[acd.agents]]\nid = \"1001\"\npassword = \"pw-1001\"\n\
         [[acd.agents]]\nid = \"1002\"\npassword = \"pw-1002\"\n\
         [[acd.agents]]\nid = \"1003\"\npassword = \"pw-1003\"\n",
    );
    let mut numbers = Vec::new();
    for i in 0..30 {
        numbers.push(number([8, 8, 2, 8, 3][i % 5], i as u32));
    }
    let agents: Vec<(&'static str, &'static str, u16)> = vec![
        ("1001", "pw-1001", phones[0].addr.port()),
        ("1002", "pw-1002", phones[1].addr.port()),
        ("1003", "pw-1003", phones[2].addr.port()),
    ];
    let (out, db) = run_with_agents(dir.path(), toml, numbers.clone(), port, agents).await;
    // Completed: every lead final, each dialled once, the right outcome.
    assert_eq!(out.report.summary.leads_final, 30);
    assert!(!out.stopped);
    let mut answered = 0;
    for l in &out.report.leads {
        let a = only_attempt(l);
        let want = match l.number.chars().last() {
            Some('8') => "answered",
            Some('2') => "busy",
            _ => "no_answer",
        };
        assert_eq!(a.disposition.as_deref(), Some(want), "{a:?}");
        answered += usize::from(want == "answered");
    }
    // Within its caps: every person reached an agent (none abandoned), never more than
    // max_concurrent calls at once.
    let connected = events(&db, "connected").await;
    let abandoned = events(&db, "abandoned").await;
    assert_eq!((connected.len(), abandoned.len()), (answered, 0));
    let (mode, abandon_rate, _) = out.pacing.clone().expect("paced");
    assert_eq!(mode, "predictive");
    assert!(abandon_rate <= 0.03, "{abandon_rate}");
    let (_, peak) = peak_concurrency(&db).await;
    assert!(peak <= 12, "peak concurrency {peak}");
    assert_phones_done(&mut phones);
    drop(far);
}

/// Auto-pause against real peers: one agent, progressive dialling boosted ×3, and the rule
/// "more than 0 calls waiting, for 0 s": answered people pile up behind the one agent, the
/// campaign auto-pauses (an `auto_paused` campaign event with its reason), places no call
/// while paused, resumes (`auto_resumed`) once the queue is empty and the agent free, and
/// still runs to completion.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_pause_stops_dialling_while_calls_wait_and_releases_when_the_agent_frees() {
    let dir = tempfile::tempdir().unwrap();
    let agent_clip = tone(dir.path(), "agent.wav", "u-law", 660, 3.0);
    // People who talk 1 s and hang up (8).
    let far = SippUas::start(OUTCOMES, Transport::Udp, &[]).unwrap();
    let mut phone1 = phone(0, &agent_clip, None, 1);
    let port = free_port(Transport::Udp).unwrap();
    let toml = acd_toml(
        "autopause",
        &far.trunk_uri(),
        port,
        "max_concurrent = 6\ncps = 20\n\
         [endpoint]\ntype = \"progressive\"\nboost_factor = 3\nmax_waiting_calls = 3\n\
         auto_pause_waiting = 0\nauto_pause_after = 0\n",
        "wrap_up = 0\nmax_wait = 5\n\
         [[acd.agents]]\nid = \"1001\"\npassword = \"pw-1001\"\n",
    );
    let numbers: Vec<String> = (0..12).map(|i| number(8, i)).collect();
    let agents = vec![("1001", "pw-1001", phone1.addr.port())];
    let (out, db) = run_with_agents(dir.path(), toml, numbers, port, agents).await;
    assert_eq!(out.report.summary.leads_final, 12);
    assert!(!out.stopped);

    let store = Store::open(&db).await.unwrap();
    let id = store.campaign_id("autopause").await.unwrap().unwrap();
    let events: Vec<(String, serde_json::Value)> = store
        .campaign_events(id)
        .await
        .unwrap()
        .into_iter()
        .map(|(at, data)| (at, serde_json::from_str(&data).unwrap()))
        .collect();
    assert!(
        events.len() >= 2,
        "an auto-pause and its release: {events:?}"
    );
    assert_eq!(events[0].1["type"], "auto_paused", "{events:?}");
    assert_eq!(events[0].1["reason"], "calls_waiting");
    assert_eq!(events[0].1["threshold"], 0);
    assert!(events[0].1["calls_waiting"].as_u64().unwrap() >= 1);
    assert_eq!(events[1].1["type"], "auto_resumed", "{events:?}");
    // They alternate, and no call was placed while paused.
    let starts: Vec<String> = sqlx::query_scalar("SELECT started_at FROM attempts")
        .fetch_all(store.pool())
        .await
        .unwrap();
    for (i, (at, ev)) in events.iter().enumerate() {
        let want = if i % 2 == 0 {
            "auto_paused"
        } else {
            "auto_resumed"
        };
        assert_eq!(ev["type"], want, "{events:?}");
        if want == "auto_paused" {
            let until = events.get(i + 1).map(|e| e.0.as_str());
            let inside: Vec<&String> = starts
                .iter()
                .filter(|s| s.as_str() > at.as_str() && until.is_none_or(|u| s.as_str() < u))
                .collect();
            assert!(
                inside.is_empty(),
                "calls placed while paused ({at} → {until:?}): {inside:?}"
            );
        }
    }
    assert_phones_done(std::slice::from_mut(&mut phone1));
    drop(far);
}

/// Preview dialling: nothing is dialled until the agent asks; each request places one call to
/// the next lead, which (answered) goes to the agent who asked — not to the other available
/// agent —; a request while the agent's call is on is refused; the campaign completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preview_dials_only_when_the_agent_asks_and_connects_to_that_agent() {
    use outdial::runner::{PreviewRefusal, PreviewRequest, RunHooks};
    let dir = tempfile::tempdir().unwrap();
    let agent_clip = tone(dir.path(), "agent.wav", "u-law", 660, 3.0);
    // People who talk 1 s and hang up (8), and a busy line (2).
    let far = SippUas::start(OUTCOMES, Transport::Udp, &[]).unwrap();
    let mut phones: Vec<SippUas> = (0..2).map(|_| phone(0, &agent_clip, None, 1)).collect();
    let port = free_port(Transport::Udp).unwrap();
    let toml = acd_toml(
        "preview",
        &far.trunk_uri(),
        port,
        "max_concurrent = 5\ncps = 20\n[endpoint]\ntype = \"preview\"\n",
        "wrap_up = 0\nmax_wait = 5\n\
         [[acd.agents]]\nid = \"1001\"\npassword = \"pw-1001\"\n\
         [[acd.agents]]\nid = \"1002\"\npassword = \"pw-1002\"\n",
    );
    let numbers = [number(8, 1), number(2, 2), number(8, 3)];
    let leads_csv = dir.path().join("leads.csv");
    write_leads(&leads_csv, &numbers);
    let cfg: outdial::campaign::config::CampaignConfig = toml::from_str(&toml).unwrap();
    cfg.validate().unwrap();
    let db = dir.path().join("outdial.db");
    let store = Store::open(&db).await.unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<PreviewRequest>();
    let run = {
        let store = store.clone();
        tokio::spawn(async move {
            let hooks = RunHooks {
                preview: Some(rx),
                ..RunHooks::default()
            };
            run_csv_with(&cfg, &leads_csv, &store, hooks).await
        })
    };
    let contacts = (phones[0].addr.port(), phones[1].addr.port());
    tokio::task::spawn_blocking(move || {
        wait_bound(port);
        assert_eq!(register(port, "1001", "pw-1001", contacts.0, 300, 200), 0);
        assert_eq!(register(port, "1002", "pw-1002", contacts.1, 300, 200), 0);
    })
    .await
    .unwrap();
    let ask = |agent: &str| {
        let (reply, answer) = tokio::sync::oneshot::channel();
        tx.send(PreviewRequest {
            agent: agent.into(),
            reply,
        })
        .ok()
        .map(|_| answer)
    };
    let attempts = || async {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM attempts")
            .fetch_one(store.pool())
            .await
            .unwrap()
    };
    // Until 1001 asks, nothing is dialled (1001 and 1002 are logged in and available).
    let mut got = Vec::new();
    let mut refused_busy = 0;
    let t0 = Instant::now();
    while got.len() < 3 {
        assert!(
            t0.elapsed() < Duration::from_secs(40),
            "only {got:?} in 40 s"
        );
        let answer = ask("1001").expect("the run takes requests").await.unwrap();
        match answer {
            Ok(lead) => {
                assert_eq!(
                    attempts().await,
                    got.len() as i64 + 1,
                    "one call per request"
                );
                got.push(lead.number.clone());
                // While that call is on, 1001 cannot ask again.
                match ask("1001").unwrap().await.unwrap() {
                    Err(PreviewRefusal::AgentNotAvailable(a, _)) => {
                        assert_eq!(a, "1001");
                        refused_busy += 1;
                    }
                    other => panic!("a second request during the agent's call: {other:?}"),
                }
            }
            Err(PreviewRefusal::AgentNotAvailable(..)) => {
                assert_eq!(
                    attempts().await,
                    got.len() as i64,
                    "nothing dialled unasked"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("unexpected refusal: {e}"),
        }
    }
    assert!(
        refused_busy >= 1,
        "a request during the agent's call is refused"
    );
    let mut sorted = got.clone();
    sorted.sort();
    let mut want = numbers.to_vec();
    want.sort();
    assert_eq!(sorted, want, "each lead once");
    let out = tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("the campaign completes")
        .unwrap();
    assert_eq!(out.report.summary.leads_final, 3);
    let connected = events(&db, "connected").await;
    assert_eq!(connected.len(), 2, "{connected:?}");
    assert!(
        connected.iter().all(|c| c["agent"] == "1001"),
        "preview calls go to the agent who asked: {connected:?}"
    );
    assert_phones_done(&mut phones);
    drop(far);
}

/// Two campaigns of `outdial serve` with agents on one `local_address` run on one engine and
/// share its agents: one SIPp phone registered once serves the customers of both; the
/// higher-priority campaign paces against the free agent first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_campaigns_on_one_engine_share_the_agent() {
    use outdial::service::Service;
    let dir = tempfile::tempdir().unwrap();
    let agent_clip = tone(dir.path(), "agent.wav", "u-law", 660, 3.0);
    // People who talk 1 s and hang up (8).
    let far = SippUas::start(OUTCOMES, Transport::Udp, &[]).unwrap();
    let mut phone1 = phone(0, &agent_clip, None, 1);
    let port = free_port(Transport::Udp).unwrap();
    let defaults: toml::Table = toml::from_str(&format!(
        "trunk = \"{}\"\nlocal_address = \"127.0.0.1:{port}\"\nring_timeout = 10\n\
         hold_time = 30\nmedia_timeout = 0\n[amd]\nprofile = \"off\"\n\
         [acd]\nwrap_up = 0\nmax_wait = 20\n\
         [[acd.agents]]\nid = \"1001\"\npassword = \"pw-1001\"\n",
        far.trunk_uri()
    ))
    .unwrap();
    let store = Store::open(&dir.path().join("outdial.db")).await.unwrap();
    let service = Service::new(store.clone(), defaults);
    let mut ids = Vec::new();
    for (name, priority, base) in [("low", 1, 40u32), ("high", 5, 50)] {
        let leads: Vec<outdial::campaign::leads::NewLead> = (0..3)
            .map(|i| {
                let n = number(8, base + i);
                outdial::campaign::leads::NewLead {
                    number: n.clone(),
                    raw_number: n,
                    attributes: Default::default(),
                    line: u64::from(i) + 2,
                }
            })
            .collect();
        let list = store.create_call_list(name, &leads).await.unwrap();
        let settings = serde_json::json!({
            "name": name, "caller_id": "+14155550000", "priority": priority, "cps": 20,
            "max_concurrent": 3, "endpoint": {"type": "progressive"},
        });
        let row = store
            .create_campaign(name, &settings.to_string(), &[list.id])
            .await
            .unwrap();
        ids.push(row.id);
    }
    for id in &ids {
        service.control(*id, "start").await.unwrap();
    }
    // A campaign on the same address with other agents cannot join that engine.
    let list = store.create_call_list("other", &[]).await.unwrap();
    let other = store
        .create_campaign(
            "other",
            &serde_json::json!({"name": "other", "caller_id": "+14155550000",
                "acd": {"agents": [{"id": "2001", "password": "pw-2001"}]}})
            .to_string(),
            &[list.id],
        )
        .await
        .unwrap();
    match service.control(other.id, "start").await {
        Err(outdial::service::ControlError::Conflict(m)) => {
            assert!(m.contains("local_address"), "{m}")
        }
        r => panic!("joined an engine with other agents: {r:?}"),
    }
    // One registration, on the one engine both run on.
    let contact = phone1.addr.port();
    tokio::task::spawn_blocking(move || {
        wait_bound(port);
        assert_eq!(register(port, "1001", "pw-1001", contact, 300, 200), 0);
    })
    .await
    .unwrap();
    let t0 = Instant::now();
    loop {
        let mut done = 0;
        for id in &ids {
            if store.campaign(*id).await.unwrap().unwrap().state == "completed" {
                done += 1;
            }
        }
        if done == ids.len() {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "campaigns never completed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Every customer of both campaigns was connected to the one agent.
    let rows: Vec<(i64, String)> = sqlx::query_as(
        "SELECT a.campaign_id, e.data FROM call_events e JOIN attempts a ON a.id = e.attempt_id \
         WHERE e.kind = 'connected'",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    let mut per_campaign: HashMap<i64, usize> = HashMap::new();
    for (c, data) in &rows {
        let v: serde_json::Value = serde_json::from_str(data).unwrap();
        assert_eq!(v["agent"], "1001");
        *per_campaign.entry(*c).or_default() += 1;
    }
    assert_eq!(per_campaign.get(&ids[0]), Some(&3), "{rows:?}");
    assert_eq!(per_campaign.get(&ids[1]), Some(&3), "{rows:?}");
    let abandoned: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM call_events WHERE kind = 'abandoned'")
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(abandoned, 0);
    service.shutdown(Duration::from_secs(5)).await;
    assert_phones_done(std::slice::from_mut(&mut phone1));
    drop(far);
}

/// An inbound caller (SIPp calling the campaign's `[inbound]` number) reaches the agent while
/// the outbound campaign runs on the same agent, ahead of an outbound customer who was
/// waiting in the queue before the caller came; a call to a number that is not the
/// campaign's is refused with 404.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inbound_caller_reaches_the_agent_ahead_of_a_waiting_outbound_customer() {
    let dir = tempfile::tempdir().unwrap();
    let agent_clip = tone(dir.path(), "agent.wav", "u-law", 660, 4.0);
    let caller_clip = tone(dir.path(), "caller.wav", "u-law", 500, 4.0);
    // Two outbound customers answer at once and wait; the one agent talks 3 s per call.
    let customers = customers(dir.path(), Transport::Udp, 2);
    let agent = phone(0, &agent_clip, Some(3000), 3);
    let port = free_port(Transport::Udp).unwrap();
    let toml = acd_toml(
        "inbound",
        &customers.trunk_uri(),
        port,
        "max_concurrent = 2\n[inbound]\nnumbers = [\"+1 415 555 0000\"]\n",
        "mode = \"per_call\"\nwrap_up = 0\nmax_wait = 30\n[[acd.agents]]\nid = \"1001\"\npassword = \"pw-1001\"\n",
    );
    let caller = std::fs::read_to_string(fixture("uac_inbound_caller.xml"))
        .unwrap()
        .replace("@CLIP@", caller_clip.to_str().unwrap());
    let refused = std::fs::read_to_string(fixture("uac_inbound_refused.xml"))
        .unwrap()
        .replace("@CODE@", "404");
    let scenarios = dir.path().to_path_buf();
    let agent_port = agent.addr.port();
    let (out, db) = run_registering(
        dir.path(),
        toml,
        vec![number(0, 1), number(0, 2)],
        port,
        move |engine| {
            assert_eq!(register(engine, "1001", "pw-1001", agent_port, 300, 200), 0);
            std::thread::sleep(Duration::from_millis(1500));
            assert_eq!(
                sipp_caller(&scenarios, &refused, "refused.xml", "+14155551234", engine),
                Some(0),
                "a number that is not the campaign's: 404"
            );
            assert_eq!(
                sipp_caller(&scenarios, &caller, "caller.xml", "+14155550000", engine),
                Some(0),
                "the inbound caller's call completed"
            );
        },
    )
    .await;
    let store = Store::open(&db).await.unwrap();
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT call_id, kind, at FROM call_events WHERE kind IN ('accepting', 'queued', 'connected') ORDER BY id",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    let inbound = rows
        .iter()
        .find(|r| r.1 == "accepting")
        .map(|r| r.0.clone())
        .expect("the inbound call was accepted");
    let at = |id: &str, kind: &str| {
        rows.iter()
            .find(|r| r.0 == id && r.1 == kind)
            .map(|r| r.2.clone())
    };
    let inbound_queued = at(&inbound, "queued").expect("inbound queued");
    let inbound_connected = at(&inbound, "connected").expect("inbound connected to the agent");
    // An outbound customer queued before the caller and still waiting then: connected after.
    let waiting: Vec<String> = rows
        .iter()
        .filter(|r| r.1 == "queued" && r.0 != inbound && r.2 < inbound_queued)
        .map(|r| r.0.clone())
        .filter(|id| at(id, "connected").is_none_or(|c| c > inbound_queued))
        .collect();
    assert!(
        !waiting.is_empty(),
        "a customer waited at the same time: {rows:?}"
    );
    for w in &waiting {
        assert!(
            at(w, "connected").is_some_and(|c| c > inbound_connected),
            "the inbound caller went first: {rows:?}"
        );
    }
    // Stored as an inbound attempt of a lead that is never dialled.
    let (direction, status, attrs): (String, String, String) = sqlx::query_as(
        "SELECT a.direction, l.status, l.attributes FROM attempts a JOIN leads l ON l.id = a.lead_id WHERE a.call_id = ?",
    )
    .bind(&inbound)
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!((direction.as_str(), status.as_str()), ("inbound", "final"));
    assert!(attrs.contains("inbound"), "{attrs}");
    let acd = out.engine.acd.as_ref().unwrap();
    assert_eq!(acd.connected, 3, "two customers and the caller");
    for l in out
        .report
        .leads
        .iter()
        .filter(|l| l.number != "+14155559999")
    {
        assert_eq!(
            only_attempt(l).disposition.as_deref(),
            Some("answered"),
            "{l:?}"
        );
    }
    assert_phones_done(&mut [customers, agent]);
}

/// Runs SIPp as a caller (`xml`, one call to `service` at the engine's `port`); its exit code.
fn sipp_caller(dir: &Path, xml: &str, name: &str, service: &str, port: u16) -> Option<i32> {
    let f = dir.join(name);
    std::fs::write(&f, xml).unwrap();
    Command::new("sipp")
        .arg("-sf")
        .arg(&f)
        .args(["-s", service, &format!("127.0.0.1:{port}")])
        .args([
            "-i",
            "127.0.0.1",
            "-p",
            &free_port(Transport::Udp).unwrap().to_string(),
        ])
        .args(["-mp", &free_port(Transport::Udp).unwrap().to_string()])
        .args(["-m", "1", "-nostdin", "-timeout", "30s", "-timeout_error"])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .code()
}

/// An inbound INVITE from a source that is not allowed (`allow_from` names another address)
/// is refused with 403 by a running campaign, and no call is stored for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inbound_caller_from_an_unknown_source_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let agent_clip = tone(dir.path(), "agent.wav", "u-law", 660, 2.0);
    let customers = customers(dir.path(), Transport::Udp, 1);
    let agent = phone(0, &agent_clip, Some(1500), 1);
    let port = free_port(Transport::Udp).unwrap();
    let toml = acd_toml(
        "inbound-refused",
        &customers.trunk_uri(),
        port,
        "max_concurrent = 1\n[inbound]\nnumbers = [\"+14155550000\"]\nallow_from = [\"192.0.2.1\"]\n",
        "mode = \"per_call\"\nwrap_up = 0\nmax_wait = 30\n[[acd.agents]]\nid = \"1001\"\npassword = \"pw-1001\"\n",
    );
    let refused = std::fs::read_to_string(fixture("uac_inbound_refused.xml"))
        .unwrap()
        .replace("@CODE@", "403");
    let scenarios = dir.path().to_path_buf();
    let agent_port = agent.addr.port();
    let (out, db) = run_registering(dir.path(), toml, vec![number(0, 1)], port, move |engine| {
        assert_eq!(register(engine, "1001", "pw-1001", agent_port, 300, 200), 0);
        assert_eq!(
            sipp_caller(&scenarios, &refused, "refused.xml", "+14155550000", engine),
            Some(0),
            "a source not allowed: 403"
        );
    })
    .await;
    let store = Store::open(&db).await.unwrap();
    let inbound: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM attempts WHERE direction = 'inbound'")
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(inbound, 0);
    assert_eq!(
        out.engine.acd.as_ref().unwrap().connected,
        1,
        "the outbound customer"
    );
    assert_phones_done(&mut [customers, agent]);
}

const HOLD_CUSTOMER: &str = include_str!("../sip-fixtures/scenarios/uas_hold.xml");

/// RTP packets captured on loopback to `port`: (arrival, epoch seconds; SSRC).
fn rtp_to(pcap: &Path, port: u16) -> Vec<(f64, u32)> {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(pcap)
        .args(["-d", &format!("udp.port=={port},rtp")])
        .args(["-Y", &format!("udp.dstport == {port} && rtp")])
        .args(["-T", "fields", "-e", "frame.time_epoch", "-e", "rtp.ssrc"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let (t, s) = l.split_once('\t')?;
            let ssrc = u32::from_str_radix(s.trim().trim_start_matches("0x"), 16).ok()?;
            Some((t.trim().parse().ok()?, ssrc))
        })
        .collect()
}

/// Epoch seconds of a stored event's `at`.
fn epoch(at: &str) -> f64 {
    let t = chrono::DateTime::parse_from_rfc3339(at).unwrap();
    t.timestamp_millis() as f64 / 1000.0
}

async fn call_events(db: &Path) -> Vec<(String, serde_json::Value)> {
    let store = Store::open(db).await.unwrap();
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT at, data FROM call_events ORDER BY id")
            .fetch_all(store.pool())
            .await
            .unwrap();
    rows.into_iter()
        .map(|(at, d)| (at, serde_json::from_str(&d).unwrap()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_mutes_tags_holds_resumes_records_and_hangs_up() {
    let dir = tempfile::tempdir().unwrap();
    let customer_clip = tone(dir.path(), "customer.wav", "u-law", 440, 20.0);
    let agent_clip = tone(dir.path(), "agent.wav", "u-law", 660, 20.0);
    let mut customer = SippUas::start(
        &HOLD_CUSTOMER.replace("@CLIP@", customer_clip.to_str().unwrap()),
        Transport::Udp,
        &["-m", "1"],
    )
    .unwrap();
    let mut agent = phone(0, &agent_clip, None, 1);
    let pcap_dir = tempfile::tempdir().unwrap();
    let pcap = pcap_dir.path().join("customer.pcap");
    let mut tshark = tshark(&format!("udp dst port {}", customer.media_port), &pcap);
    let port = free_port(Transport::Udp).unwrap();
    let api_port = free_port(Transport::Tcp).unwrap();
    let recordings = dir.path().join("recordings");
    let toml = acd_toml(
        "acd-controls",
        &customer.trunk_uri(),
        port,
        &format!(
            "api_listen = \"127.0.0.1:{api_port}\"\nrecording = \"agent_calls\"\nrecordings_dir = \"{}\"",
            recordings.display()
        ),
        "mode = \"per_call\"\nwrap_up = 0\nmax_wait = 20\nmandatory_disposition = true\n\
         dispositions = [\"sale\", \"no_sale\"]\n\
         [[acd.agents]]\nid = \"1001\"\npassword = \"pw-1001\"\n",
    );
    let mine = agent_token(dir.path(), "1001").await;
    let base = format!("http://127.0.0.1:{api_port}");
    let api = tokio::spawn(async move {
        let http = reqwest::Client::new();
        let call = |action: &'static str, body: Option<serde_json::Value>| {
            let (http, base, mine) = (http.clone(), base.clone(), mine.clone());
            async move {
                let mut r = http
                    .post(format!("{base}/v1/agents/1001/call/{action}"))
                    .bearer_auth(&mine);
                if let Some(b) = body {
                    r = r.json(&b);
                }
                let r = r.send().await.unwrap();
                let status = r.status().as_u16();
                let v: serde_json::Value = r.json().await.unwrap_or_default();
                (status, v)
            }
        };
        agent_until(&http, &base, &mine, "1001", |v| v["state"] == "on_call").await;
        let pause = |ms| tokio::time::sleep(Duration::from_millis(ms));
        pause(1000).await;
        let (s, v) = call("mute", None).await;
        assert_eq!((s, v["muted"].as_bool()), (200, Some(true)), "{v}");
        assert_eq!(call("mute", None).await.0, 409, "already muted");
        pause(1000).await;
        assert_eq!(call("unmute", None).await.0, 200);
        let (s, v) = call(
            "tag",
            Some(serde_json::json!({"tags": ["vip", "callback"]})),
        )
        .await;
        assert_eq!(
            (s, &v["tags"]),
            (200, &serde_json::json!(["vip", "callback"]))
        );
        assert_eq!(
            call("tag", Some(serde_json::json!({"tags": []}))).await.0,
            422
        );
        assert_eq!(call("bogus", None).await.0, 404);
        pause(1000).await;
        let (s, v) = call("hold", None).await;
        assert_eq!((s, v["held"].as_bool()), (200, Some(true)), "{v}");
        pause(1500).await;
        let (s, v) = call("resume", None).await;
        assert_eq!((s, v["held"].as_bool()), (200, Some(false)), "{v}");
        pause(1000).await;
        assert_eq!(call("hangup", None).await.0, 200);
        // Tags still taken in the wrap-up.
        let (s, v) = call("tag", Some(serde_json::json!({"tags": ["late"]}))).await;
        assert_eq!(s, 200, "{v}");
        pause(700).await;
        let r = http
            .put(format!("{base}/v1/agents/1001/disposition"))
            .bearer_auth(&mine)
            .json(&serde_json::json!({"disposition": "sale"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        // No call any more: refused.
        agent_until(&http, &base, &mine, "1001", |v| v["state"] == "available").await;
        assert_eq!(call("mute", None).await.0, 409);
    });
    let run = run_with_agents(
        dir.path(),
        toml,
        vec![number(0, 1)],
        port,
        vec![("1001", "pw-1001", agent.addr.port())],
    );
    // A failed check in the API client fails the test at once (the call would stay up).
    let mut api = api;
    tokio::pin!(run);
    let (out, db) = tokio::select! {
        r = &mut run => r,
        a = &mut api => {
            a.expect("the API client's checks");
            run.await
        }
    };
    stop_tshark(&mut tshark);
    let a = only_attempt(&out.report.leads[0]);
    assert_eq!(a.disposition.as_deref(), Some("answered"), "{a:?}");
    assert_eq!(a.detail.as_deref(), Some("agent_hangup"), "{a:?}");
    for (name, s) in [("customer", &mut customer), ("agent", &mut agent)] {
        assert_eq!(
            s.wait_exit(Duration::from_secs(10)),
            Some(0),
            "{name} SIPp (hold re-INVITE sendonly, then sendrecv): {}",
            s.dir().display()
        );
    }
    let evs = call_events(&db).await;
    let at = |kind: &str| {
        evs.iter()
            .find(|(_, e)| e["type"] == kind)
            .map(|(at, _)| epoch(at))
            .unwrap_or_else(|| panic!("no {kind} event: {evs:?}"))
    };
    let flow: Vec<String> = evs
        .iter()
        .filter(|(_, e)| e["type"] == "call_status")
        .map(|(_, e)| {
            format!(
                "{}:{}",
                e["flow"].as_str().unwrap(),
                e["status"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        flow,
        [
            "regular:ringing",
            "regular:connected",
            "regular:onHold",
            "regular:connected",
            "regular:ended"
        ]
    );
    assert!(
        evs.iter()
            .filter(|(_, e)| e["type"] == "call_status")
            .all(|(_, e)| e["mandatory_tagging"] == true),
        "the campaign's disposition is mandatory: every flow state says so"
    );
    let held = evs.iter().find(|(_, e)| e["type"] == "held").unwrap();
    assert_eq!(
        (held.1["leg"].as_str(), held.1["by"].as_str()),
        (Some("customer"), Some("1001"))
    );

    // Mute and hold, counted where the customer's RTP arrives: before the first hold only the
    // agent's relayed packets reach it, so their SSRC is the first seen.
    let pkts = rtp_to(&pcap, customer.media_port);
    assert!(pkts.len() > 100, "{} packets to the customer", pkts.len());
    let agent_ssrc = pkts[0].1;
    let from_agent = |from: f64, to: f64| {
        pkts.iter()
            .filter(|(t, s)| *s == agent_ssrc && *t > from && *t < to)
            .count()
    };
    let (muted, unmuted, hold, resumed) = (at("muted"), at("unmuted"), at("held"), at("resumed"));
    assert_eq!(
        from_agent(muted + 0.15, unmuted - 0.05),
        0,
        "agent RTP while muted"
    );
    assert!(
        from_agent(unmuted + 0.15, hold - 0.05) > 20,
        "agent RTP after unmute"
    );
    assert_eq!(
        from_agent(hold + 0.15, resumed - 0.05),
        0,
        "agent RTP while held"
    );
    let music = pkts
        .iter()
        .filter(|(t, s)| *s != agent_ssrc && *t > hold && *t < resumed + 0.1)
        .count();
    assert!(music > 30, "music on hold packets: {music}");
    assert!(
        from_agent(resumed + 0.15, f64::MAX) > 20,
        "agent RTP after resume"
    );

    // The recording: both directions, as long as the talk time.
    let sync = evs
        .iter()
        .find(|(_, e)| e["type"] == "dialer_sync")
        .map(|(_, e)| e.clone())
        .unwrap_or_else(|| panic!("no dialer_sync: {evs:?}"));
    assert_eq!(sync["agent"], "1001");
    assert_eq!(sync["tags"], serde_json::json!(["vip", "callback", "late"]));
    let hold_ms = sync["holdMs"].as_u64().unwrap();
    assert!((1300..3000).contains(&hold_ms), "{sync}");
    assert_eq!(sync["disposition"], "sale");
    assert!(
        sync["wrapUpMs"].as_u64().unwrap() >= 600,
        "{sync} {:?}",
        agent_states(&db, "1001").await
    );
    let saved = evs
        .iter()
        .find(|(_, e)| e["type"] == "recording_saved")
        .map(|(_, e)| e.clone())
        .unwrap();
    let file = saved["file"].as_str().unwrap();
    assert_eq!(sync["recording"].as_str(), Some(file));
    let talk_ms = sync["talkMs"].as_i64().unwrap();
    let wav = hound::WavReader::open(file).unwrap();
    assert_eq!(wav.spec().channels, 2);
    let len_ms = i64::from(wav.duration()) / 8;
    assert!(
        (len_ms - talk_ms).abs() <= 200,
        "recording {len_ms} ms, talk {talk_ms} ms"
    );
    let samples: Vec<i16> = wav.into_samples().map(|s| s.unwrap()).collect();
    let energy = |ch: usize| {
        samples
            .iter()
            .skip(ch)
            .step_by(2)
            .filter(|s| s.abs() > 3000)
            .count()
    };
    // Customer left (440 Hz at 0.3 full scale), agent right: each well over a second of it.
    assert!(
        energy(0) > 8000 && energy(1) > 8000,
        "{} {}",
        energy(0),
        energy(1)
    );

    // Downloaded through the API, whole and by byte range; the call links it and its sync.
    let store = Store::open(&db).await.unwrap();
    let admin = outdial::api::auth::new_token();
    store
        .create_token("admin", "admin", None, &admin)
        .await
        .unwrap();
    let (_etx, erx) = tokio::sync::oneshot::channel();
    let live = tokio::sync::broadcast::channel(16).0;
    let (bound, server) = outdial::api::serve_run("127.0.0.1:0".parse().unwrap(), store, erx, live)
        .await
        .unwrap();
    let call_id = a.call_id.clone().unwrap();
    let http = reqwest::Client::new();
    let get = |path: String, range: Option<&'static str>| {
        let mut r = http
            .get(format!("http://{bound}{path}"))
            .bearer_auth(&admin);
        if let Some(v) = range {
            r = r.header("range", v);
        }
        r.send()
    };
    let rec_url = format!("/v1/calls/{call_id}/recording");
    let whole = std::fs::read(file).unwrap();
    let r = get(rec_url.clone(), None).await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["content-type"], "audio/wav");
    assert_eq!(r.bytes().await.unwrap().as_ref(), whole.as_slice());
    let r = get(rec_url.clone(), Some("bytes=0-43")).await.unwrap();
    assert_eq!(r.status().as_u16(), 206);
    assert_eq!(
        r.headers()["content-range"].to_str().unwrap(),
        format!("bytes 0-43/{}", whole.len())
    );
    assert_eq!(r.bytes().await.unwrap().as_ref(), &whole[..44]);
    let r = get(rec_url.clone(), Some("bytes=999999999-"))
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 416);
    let v: serde_json::Value = get(format!("/v1/calls/{call_id}"), None)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        v["sync"]["tags"],
        serde_json::json!(["vip", "callback", "late"]),
        "{v}"
    );
    assert_eq!(v["recording"]["url"], rec_url);
    server.abort();
}

const REFER_CUSTOMER: &str = include_str!("../sip-fixtures/scenarios/uas_refer.xml");

/// Envelopes of a Server-Sent Events response until `done` holds for those read (30 s cap).
async fn read_sse(
    mut resp: reqwest::Response,
    done: impl Fn(&[serde_json::Value]) -> bool,
) -> Vec<serde_json::Value> {
    let mut buf = String::new();
    let mut out = Vec::new();
    let t0 = Instant::now();
    while !done(&out) {
        let left = Duration::from_secs(30).saturating_sub(t0.elapsed());
        let chunk = tokio::time::timeout(left, resp.chunk())
            .await
            .unwrap_or_else(|_| panic!("the events within 30 s; so far {out:?}"))
            .unwrap()
            .expect("the stream stays open");
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(i) = buf.find("\n\n") {
            let block: String = buf.drain(..i + 2).collect();
            for line in block.lines() {
                if let Some(d) = line.strip_prefix("data:") {
                    out.push(serde_json::from_str(d.trim()).unwrap());
                }
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blind_transfer_refers_the_customer_and_frees_the_agent() {
    let dir = tempfile::tempdir().unwrap();
    let customer_clip = tone(dir.path(), "customer.wav", "u-law", 440, 10.0);
    let agent_clip = tone(dir.path(), "agent.wav", "u-law", 660, 10.0);
    let mut customer = SippUas::start(
        &REFER_CUSTOMER.replace("@CLIP@", customer_clip.to_str().unwrap()),
        Transport::Udp,
        &["-m", "1"],
    )
    .unwrap();
    let mut agent = phone(0, &agent_clip, None, 1);
    let port = free_port(Transport::Udp).unwrap();
    let api_port = free_port(Transport::Tcp).unwrap();
    let toml = acd_toml(
        "acd-blind-transfer",
        &customer.trunk_uri(),
        port,
        &format!("api_listen = \"127.0.0.1:{api_port}\""),
        "mode = \"per_call\"\nwrap_up = 0\nmax_wait = 20\n\
         [[acd.agents]]\nid = \"1001\"\npassword = \"pw-1001\"\n",
    );
    let mine = agent_token(dir.path(), "1001").await;
    let base = format!("http://127.0.0.1:{api_port}");
    let api = tokio::spawn(async move {
        let http = reqwest::Client::new();
        // The agent's own live stream, from before its call.
        let sse = loop {
            if let Ok(r) = http
                .get(format!("{base}/v1/events?agent=1001"))
                .bearer_auth(&mine)
                .send()
                .await
                && r.status() == 200
            {
                break r;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let reader = tokio::spawn(read_sse(sse, |evs| {
            evs.iter().any(|e| e["type"] == "DIALER.SYNC")
        }));
        agent_until(&http, &base, &mine, "1001", |v| v["state"] == "on_call").await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let url = format!("{base}/v1/agents/1001/call/transfer");
        let r = http
            .post(&url)
            .bearer_auth(&mine)
            .json(&serde_json::json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 422, "a transfer needs a target");
        let r = http
            .post(&url)
            .bearer_auth(&mine)
            .json(&serde_json::json!({"target": "+14155557777"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        reader.await.expect("the live stream")
    });
    let (out, db) = run_with_agents(
        dir.path(),
        toml,
        vec![number(0, 1)],
        port,
        vec![("1001", "pw-1001", agent.addr.port())],
    )
    .await;
    let live = api.await.expect("the API client's checks");
    let a = only_attempt(&out.report.leads[0]);
    assert_eq!(a.detail.as_deref(), Some("transferred"), "{a:?}");
    for (name, s) in [("customer", &mut customer), ("agent", &mut agent)] {
        assert_eq!(
            s.wait_exit(Duration::from_secs(10)),
            Some(0),
            "{name} SIPp (REFER, NOTIFY, BYE): {}",
            s.dir().display()
        );
    }
    // The flow as the agent's live stream carried it: DIALER.CALL_STATUS with flow and
    // status as the bus spells them, then DIALER.SYNC.
    let flow: Vec<String> = live
        .iter()
        .filter(|e| e["type"] == "DIALER.CALL_STATUS" && e["payload"]["flow"].is_string())
        .map(|e| {
            format!(
                "{}:{}",
                e["payload"]["flow"].as_str().unwrap(),
                e["payload"]["status"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        flow,
        [
            "regular:ringing",
            "regular:connected",
            "blindTransfer:transferring",
            "blindTransfer:ended"
        ],
        "{live:?}"
    );
    let sync = &live.iter().find(|e| e["type"] == "DIALER.SYNC").unwrap()["payload"]["event"];
    assert_eq!(sync["transfers"][0]["flow"], "blindTransfer");
    assert!(
        sync["transfers"][0]["target"]
            .as_str()
            .unwrap()
            .starts_with("sip:+14155557777@127.0.0.1"),
        "{sync}"
    );
    assert_eq!(sync["activeParticipant"], serde_json::Value::Null);
    let done = events(&db, "transferred").await;
    assert_eq!(done.len(), 1, "{done:?}");
    assert_eq!(done[0]["sip_status"], 200);
    // The agent was freed at the transfer, not at the customer's end.
    let states: Vec<String> = agent_states(&db, "1001")
        .await
        .into_iter()
        .map(|s| s.0)
        .collect();
    assert_eq!(states, ["available", "reserved", "on_call", "available"]);
}

const CONSULT: &str = include_str!("../sip-fixtures/scenarios/uas_consult.xml");

/// RTP payloads (µ-law) captured to `port`: (epoch seconds, SSRC, decoded samples).
fn rtp_audio_to(pcap: &Path, port: u16) -> Vec<(f64, u32, Vec<i16>)> {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(pcap)
        .args(["-d", &format!("udp.port=={port},rtp")])
        .args(["-Y", &format!("udp.dstport == {port} && rtp.p_type == 0")])
        .args([
            "-T",
            "fields",
            "-e",
            "frame.time_epoch",
            "-e",
            "rtp.ssrc",
            "-e",
            "rtp.payload",
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut f = l.split('\t');
            let t: f64 = f.next()?.trim().parse().ok()?;
            let ssrc = u32::from_str_radix(f.next()?.trim().trim_start_matches("0x"), 16).ok()?;
            // tshark prints the payload as hex, with or without `:` between bytes.
            let hex: Vec<u8> = f.next()?.bytes().filter(u8::is_ascii_hexdigit).collect();
            let bytes: Vec<u8> = hex
                .chunks(2)
                .filter_map(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok())
                .collect();
            let mut pcm = vec![0i16; bytes.len()];
            outdial::media::g711::Law::Pcmu.decode_into(&bytes, &mut pcm);
            Some((t, ssrc, pcm))
        })
        .collect()
}

/// Relative power of `hz` in 8 kHz `x` (Goertzel, normalised by the signal's energy).
fn tone_share(x: &[i16], hz: f64) -> f64 {
    let w = 2.0 * std::f64::consts::PI * hz / 8000.0;
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    let mut energy = 0.0;
    for v in x {
        let v = f64::from(*v);
        energy += v * v;
        let s = v + 2.0 * w.cos() * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    let p = s1 * s1 + s2 * s2 - 2.0 * w.cos() * s1 * s2;
    if energy == 0.0 {
        0.0
    } else {
        2.0 * p / (energy * x.len() as f64)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warm_transfer_consults_swaps_merges_three_ways_and_completes() {
    let dir = tempfile::tempdir().unwrap();
    let customer_clip = tone(dir.path(), "customer.wav", "u-law", 440, 20.0);
    let agent_clip = tone(dir.path(), "agent.wav", "u-law", 660, 20.0);
    let third_clip = tone(dir.path(), "third.wav", "u-law", 880, 20.0);
    let mut customer = SippUas::start(
        &HOLD_CUSTOMER.replace("@CLIP@", customer_clip.to_str().unwrap()),
        Transport::Udp,
        &["-m", "1"],
    )
    .unwrap();
    let mut third = SippUas::start(
        &CONSULT
            .replace("@CLIP@", third_clip.to_str().unwrap())
            .replace("@TALK_MS@", "3000"),
        Transport::Udp,
        &["-m", "1"],
    )
    .unwrap();
    let mut agent = phone(0, &agent_clip, None, 1);
    let pcap_dir = tempfile::tempdir().unwrap();
    let pcap = pcap_dir.path().join("customer.pcap");
    let mut tshark = tshark(&format!("udp dst port {}", customer.media_port), &pcap);
    let port = free_port(Transport::Udp).unwrap();
    let api_port = free_port(Transport::Tcp).unwrap();
    let recordings = dir.path().join("recordings");
    let toml = acd_toml(
        "acd-warm-transfer",
        &customer.trunk_uri(),
        port,
        &format!(
            "api_listen = \"127.0.0.1:{api_port}\"\nrecording = \"agent_calls\"\nrecordings_dir = \"{}\"",
            recordings.display()
        ),
        "mode = \"per_call\"\nwrap_up = 0\nmax_wait = 20\n\
         [[acd.agents]]\nid = \"1001\"\npassword = \"pw-1001\"\n",
    );
    let mine = agent_token(dir.path(), "1001").await;
    let base = format!("http://127.0.0.1:{api_port}");
    let third_uri = format!("sip:+14155559999@{}", third.addr);
    let api = tokio::spawn(async move {
        let http = reqwest::Client::new();
        let call = |action: &'static str, body: serde_json::Value| {
            let (http, base, mine) = (http.clone(), base.clone(), mine.clone());
            async move {
                let r = http
                    .post(format!("{base}/v1/agents/1001/call/{action}"))
                    .bearer_auth(&mine)
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                let s = r.status().as_u16();
                (s, r.json::<serde_json::Value>().await.unwrap_or_default())
            }
        };
        let none = serde_json::json!({});
        let pause = |ms| tokio::time::sleep(Duration::from_millis(ms));
        agent_until(&http, &base, &mine, "1001", |v| v["state"] == "on_call").await;
        assert_eq!(call("swap", none.clone()).await.0, 409, "no transfer yet");
        pause(500).await;
        let (s, v) = call("warm_transfer", serde_json::json!({"target": third_uri})).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(
            call("hold", none.clone()).await.0,
            409,
            "not during a warm transfer"
        );
        pause(1200).await;
        let (s, v) = call("swap", none.clone()).await;
        assert_eq!(s, 200, "{v}");
        pause(1000).await;
        let (s, v) = call("merge", none.clone()).await;
        assert_eq!(s, 200, "{v}");
        pause(1500).await;
        let (s, v) = call("complete_transfer", none.clone()).await;
        assert_eq!(s, 200, "{v}");
    });
    let run = run_with_agents(
        dir.path(),
        toml,
        vec![number(0, 1)],
        port,
        vec![("1001", "pw-1001", agent.addr.port())],
    );
    let mut api = api;
    tokio::pin!(run);
    let (out, db) = tokio::select! {
        r = &mut run => r,
        a = &mut api => {
            a.expect("the API client's checks");
            run.await
        }
    };
    stop_tshark(&mut tshark);
    for (name, s) in [
        ("customer", &mut customer),
        ("third party", &mut third),
        ("agent", &mut agent),
    ] {
        assert_eq!(
            s.wait_exit(Duration::from_secs(10)),
            Some(0),
            "{name} SIPp: {}",
            s.dir().display()
        );
    }
    let a = only_attempt(&out.report.leads[0]);
    assert_eq!(a.disposition.as_deref(), Some("answered"), "{a:?}");
    let evs = call_events(&db).await;
    let flow: Vec<String> = evs
        .iter()
        .filter(|(_, e)| e["type"] == "call_status")
        .map(|(_, e)| {
            format!(
                "{}:{}",
                e["flow"].as_str().unwrap(),
                e["status"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        flow,
        [
            "regular:ringing",
            "regular:connected",
            "warmTransfer:startingWarmTransfer",
            "warmTransfer:ringing",
            "warmTransfer:connected",
            "warmTransfer:swapping",
            "warmTransfer:connected",
            "warmTransfer:merging",
            "warmTransfer:connected",
            "regular:ended",
        ]
    );
    let status_at = |status: &str, nth: usize| {
        evs.iter()
            .filter(|(_, e)| e["type"] == "call_status" && e["status"] == status)
            .nth(nth)
            .map(|(at, _)| epoch(at))
            .unwrap()
    };
    let (merged, completed) = (status_at("merging", 0), status_at("ended", 0));
    let swapped = status_at("swapping", 0);
    let consult_on = status_at("connected", 1);
    assert_eq!(
        evs.iter()
            .filter(|(_, e)| e["type"] == "call_status")
            .nth(6)
            .unwrap()
            .1["active_participant"],
        "+1415000010",
        "after the swap the agent talks to the customer"
    );
    // What reached the customer: music while the agent consulted, the agent after the swap,
    // the agent and the third party mixed while merged (not its own voice), the third party
    // after the agent left.
    let pkts = rtp_audio_to(&pcap, customer.media_port);
    let audio = |from: f64, to: f64| -> Vec<i16> {
        pkts.iter()
            .filter(|(t, _, _)| *t > from && *t < to)
            .flat_map(|(_, _, p)| p.iter().copied())
            .collect()
    };
    let merged_audio = audio(merged + 0.3, completed - 0.1);
    assert!(
        merged_audio.len() > 4000,
        "{} samples while merged",
        merged_audio.len()
    );
    let (agent_hz, third_hz, own_hz) = (
        tone_share(&merged_audio, 660.0),
        tone_share(&merged_audio, 880.0),
        tone_share(&merged_audio, 440.0),
    );
    assert!(
        agent_hz > 0.2 && third_hz > 0.2 && own_hz < 0.02,
        "merged: 660 Hz {agent_hz:.3}, 880 Hz {third_hz:.3}, 440 Hz {own_hz:.3}"
    );
    let swapped_audio = audio(swapped + 0.3, merged - 0.1);
    assert!(
        tone_share(&swapped_audio, 660.0) > 0.5,
        "after the swap the customer hears the agent"
    );
    let held_audio = audio(consult_on + 0.2, swapped - 0.1);
    assert!(
        tone_share(&held_audio, 660.0) < 0.05 && tone_share(&held_audio, 880.0) < 0.05,
        "on hold the customer hears neither the agent nor the third party"
    );
    let after = audio(completed + 0.3, f64::MAX);
    assert!(
        tone_share(&after, 880.0) > 0.5 && tone_share(&after, 660.0) < 0.05,
        "after the agent left the customer hears the third party only"
    );
    let sync = evs
        .iter()
        .find(|(_, e)| e["type"] == "dialer_sync")
        .map(|(_, e)| e.clone())
        .unwrap();
    assert_eq!(sync["transfers"][0]["flow"], "warmTransfer", "{sync}");
    // Each leg's RTP statistics, the third party's included.
    let third_stats: Vec<_> = evs
        .iter()
        .filter(|(_, e)| e["type"] == "media_stats" && e["leg"] == "third_party")
        .collect();
    assert_eq!(third_stats.len(), 1, "{evs:?}");
    assert!(third_stats[0].1["packets"].as_u64().unwrap() > 100);
    // The recording (`agent_calls`, from the bridge): the third party is in it — mixed with
    // the agent on the right channel while merged, alone there after the agent left.
    let started = evs
        .iter()
        .find(|(_, e)| e["type"] == "recording_started")
        .map(|(at, _)| epoch(at))
        .unwrap();
    let file = evs
        .iter()
        .find(|(_, e)| e["type"] == "recording_saved")
        .map(|(_, e)| e["file"].as_str().unwrap().to_string())
        .unwrap();
    let wav: Vec<i16> = hound::WavReader::open(&file)
        .unwrap()
        .into_samples()
        .map(|s| s.unwrap())
        .collect();
    let right = |from: f64, to: f64| -> Vec<i16> {
        let frames = (wav.len() / 2) as f64;
        let at =
            |t: f64| (((t - started) * 8000.0).clamp(0.0, frames) as usize * 2 + 1).min(wav.len());
        wav[at(from)..at(to)].iter().step_by(2).copied().collect()
    };
    let merged_right = right(merged + 0.3, completed - 0.1);
    assert!(merged_right.len() > 4000, "{} samples", merged_right.len());
    let (agent_hz, third_hz) = (
        tone_share(&merged_right, 660.0),
        tone_share(&merged_right, 880.0),
    );
    assert!(
        agent_hz > 0.2 && third_hz > 0.2,
        "recorded while merged: 660 Hz {agent_hz:.3}, 880 Hz {third_hz:.3}"
    );
    let after_right = right(completed + 0.3, f64::MAX);
    assert!(after_right.len() > 2000, "{} samples", after_right.len());
    assert!(
        tone_share(&after_right, 880.0) > 0.5,
        "recorded after the agent left: the third party"
    );
}

const BUSY: &str = include_str!("../sip-fixtures/scenarios/uas_busy.xml");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warm_transfer_the_third_party_refuses_goes_back_to_the_customer() {
    let dir = tempfile::tempdir().unwrap();
    let customer_clip = tone(dir.path(), "customer.wav", "u-law", 440, 20.0);
    let agent_clip = tone(dir.path(), "agent.wav", "u-law", 660, 20.0);
    let mut customer = SippUas::start(
        &HOLD_CUSTOMER.replace("@CLIP@", customer_clip.to_str().unwrap()),
        Transport::Udp,
        &["-m", "1"],
    )
    .unwrap();
    let mut third = SippUas::start(BUSY, Transport::Udp, &["-m", "1"]).unwrap();
    let mut agent = phone(0, &agent_clip, None, 1);
    let port = free_port(Transport::Udp).unwrap();
    let api_port = free_port(Transport::Tcp).unwrap();
    let toml = acd_toml(
        "acd-warm-cancel",
        &customer.trunk_uri(),
        port,
        &format!("api_listen = \"127.0.0.1:{api_port}\""),
        "mode = \"per_call\"\nwrap_up = 0\nmax_wait = 20\n\
         [[acd.agents]]\nid = \"1001\"\npassword = \"pw-1001\"\n",
    );
    let mine = agent_token(dir.path(), "1001").await;
    let base = format!("http://127.0.0.1:{api_port}");
    let third_uri = format!("sip:+14155559999@{}", third.addr);
    let api = tokio::spawn(async move {
        let http = reqwest::Client::new();
        let call = |action: &'static str, body: serde_json::Value| {
            let (http, base, mine) = (http.clone(), base.clone(), mine.clone());
            async move {
                let r = http
                    .post(format!("{base}/v1/agents/1001/call/{action}"))
                    .bearer_auth(&mine)
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                let s = r.status().as_u16();
                (s, r.json::<serde_json::Value>().await.unwrap_or_default())
            }
        };
        agent_until(&http, &base, &mine, "1001", |v| v["state"] == "on_call").await;
        pause_ms(300).await;
        let (s, v) = call("warm_transfer", serde_json::json!({"target": third_uri})).await;
        assert_eq!(s, 200, "{v}");
        // The third party rings, then refuses: back to the customer, the call goes on.
        pause_ms(2000).await;
        let (s, v) = call("merge", serde_json::json!({})).await;
        assert_eq!(s, 409, "nothing to merge any more: {v}");
        let (s, v) = call("hangup", serde_json::json!({})).await;
        assert_eq!(s, 200, "{v}");
    });
    let run = run_with_agents(
        dir.path(),
        toml,
        vec![number(0, 1)],
        port,
        vec![("1001", "pw-1001", agent.addr.port())],
    );
    let mut api = api;
    tokio::pin!(run);
    let (out, db) = tokio::select! {
        r = &mut run => r,
        a = &mut api => {
            a.expect("the API client's checks");
            run.await
        }
    };
    for (name, s) in [
        ("customer (held, then resumed)", &mut customer),
        ("third party", &mut third),
        ("agent", &mut agent),
    ] {
        assert_eq!(
            s.wait_exit(Duration::from_secs(10)),
            Some(0),
            "{name} SIPp: {}",
            s.dir().display()
        );
    }
    let a = only_attempt(&out.report.leads[0]);
    assert_eq!(a.detail.as_deref(), Some("agent_hangup"), "{a:?}");
    let flow: Vec<String> = call_events(&db)
        .await
        .iter()
        .filter(|(_, e)| e["type"] == "call_status")
        .map(|(_, e)| {
            format!(
                "{}:{}",
                e["flow"].as_str().unwrap(),
                e["status"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        flow,
        [
            "regular:ringing",
            "regular:connected",
            "warmTransfer:startingWarmTransfer",
            "warmTransfer:ringing",
            "regular:connected",
            "regular:ended",
        ]
    );
}

async fn pause_ms(ms: u64) {
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

const REFUSED_CUSTOMER: &str = include_str!("../sip-fixtures/scenarios/uas_refer_refused.xml");

/// A trunk that does not take REFER (405): the blind transfer goes on as our own call to
/// the target — the customer on hold (re-INVITE `a=sendonly`, checked by SIPp) while it
/// rings, taken off hold and bridged to it once it answers — and the call ends when the
/// target hangs up. The agent is freed at the transfer as with REFER.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_refer_becomes_our_own_call_to_the_target_bridged_to_the_customer() {
    let dir = tempfile::tempdir().unwrap();
    let customer_clip = tone(dir.path(), "customer.wav", "u-law", 440, 10.0);
    let agent_clip = tone(dir.path(), "agent.wav", "u-law", 660, 10.0);
    let target_clip = tone(dir.path(), "target.wav", "u-law", 880, 3.0);
    let mut customer = SippUas::start(
        &REFUSED_CUSTOMER.replace("@CLIP@", customer_clip.to_str().unwrap()),
        Transport::Udp,
        &["-m", "1"],
    )
    .unwrap();
    let mut agent = phone(0, &agent_clip, None, 1);
    // The target: answers, talks 2 s, hangs up.
    let mut target = phone(0, &target_clip, Some(2000), 1);
    let target_uri = format!("sip:+14155557777@{}", target.addr);
    let port = free_port(Transport::Udp).unwrap();
    let api_port = free_port(Transport::Tcp).unwrap();
    let toml = acd_toml(
        "acd-refused-refer",
        &customer.trunk_uri(),
        port,
        &format!("api_listen = \"127.0.0.1:{api_port}\""),
        "mode = \"per_call\"\nwrap_up = 0\nmax_wait = 20\n\
         [[acd.agents]]\nid = \"1001\"\npassword = \"pw-1001\"\n",
    );
    let mine = agent_token(dir.path(), "1001").await;
    let base = format!("http://127.0.0.1:{api_port}");
    let api = tokio::spawn(transfer_once_on_call(base, mine, target_uri));
    let (out, db) = run_with_agents(
        dir.path(),
        toml,
        vec![number(0, 1)],
        port,
        vec![("1001", "pw-1001", agent.addr.port())],
    )
    .await;
    api.await.expect("the API client's checks");
    for (name, s) in [
        ("customer (REFER refused, hold, resume, BYE)", &mut customer),
        ("agent", &mut agent),
        ("target (answered, hung up)", &mut target),
    ] {
        assert_eq!(
            s.wait_exit(Duration::from_secs(10)),
            Some(0),
            "{name} SIPp: {}",
            s.dir().display()
        );
    }
    let a = only_attempt(&out.report.leads[0]);
    assert_eq!(a.detail.as_deref(), Some("transferred"), "{a:?}");
    // The REFER's refusal, then the transfer done by us.
    let failed = events(&db, "transfer_failed").await;
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["sip_status"], 405);
    let done = events(&db, "transferred").await;
    assert_eq!(done.len(), 1, "{done:?}");
    assert!(
        done[0]["to"]
            .as_str()
            .unwrap()
            .starts_with("sip:+14155557777@127.0.0.1"),
        "{done:?}"
    );
    let states: Vec<String> = agent_states(&db, "1001")
        .await
        .into_iter()
        .map(|s| s.0)
        .collect();
    assert_eq!(states, ["available", "reserved", "on_call", "available"]);
}

/// A blind transfer to another agent (`agent:1002`): the first agent is released at once
/// (its leg ended), the customer waits for the second one alone, whose phone rings and
/// takes it; each agent's call is synced (DIALER.SYNC) with its own figures.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blind_transfer_to_another_agent_requeues_the_customer_for_that_agent() {
    let dir = tempfile::tempdir().unwrap();
    let mut customer = customers(dir.path(), Transport::Udp, 1);
    let first_clip = tone(dir.path(), "first.wav", "u-law", 660, 10.0);
    let second_clip = tone(dir.path(), "second.wav", "u-law", 880, 3.0);
    // 1001 registers first, so it is the longest idle and takes the call; it waits for our
    // BYE. 1002 answers the transferred call, talks 1.5 s and hangs up.
    let mut first = phone(0, &first_clip, None, 1);
    let mut second = phone(0, &second_clip, Some(1500), 1);
    let port = free_port(Transport::Udp).unwrap();
    let api_port = free_port(Transport::Tcp).unwrap();
    let toml = acd_toml(
        "acd-agent-transfer",
        &customer.trunk_uri(),
        port,
        &format!("api_listen = \"127.0.0.1:{api_port}\""),
        "mode = \"per_call\"\nwrap_up = 0\nmax_wait = 20\n\
         [[acd.agents]]\nid = \"1001\"\npassword = \"pw-1001\"\n\
         [[acd.agents]]\nid = \"1002\"\npassword = \"pw-1002\"\n",
    );
    let mine = agent_token(dir.path(), "1001").await;
    let base = format!("http://127.0.0.1:{api_port}");
    let api = tokio::spawn(async move {
        let http = reqwest::Client::new();
        agent_until(&http, &base, &mine, "1001", |v| v["state"] == "on_call").await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let call = |target: &str| {
            http.post(format!("{base}/v1/agents/1001/call/transfer"))
                .bearer_auth(&mine)
                .json(&serde_json::json!({"target": target}))
                .send()
        };
        // To itself, or to an agent that does not exist: refused, nothing changes.
        for bad in ["agent:1001", "agent:9999"] {
            let r = call(bad).await.unwrap();
            assert_eq!(r.status().as_u16(), 409, "{bad}");
        }
        let r = call("agent:1002").await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
    });
    let (out, db) = run_with_agents(
        dir.path(),
        toml,
        vec![number(0, 1)],
        port,
        vec![
            ("1001", "pw-1001", first.addr.port()),
            ("1002", "pw-1002", second.addr.port()),
        ],
    )
    .await;
    api.await.expect("the API client's checks");
    for (name, s) in [
        ("customer", &mut customer),
        ("1001's phone (our BYE)", &mut first),
        ("1002's phone (its BYE)", &mut second),
    ] {
        assert_eq!(
            s.wait_exit(Duration::from_secs(10)),
            Some(0),
            "{name} SIPp: {}",
            s.dir().display()
        );
    }
    let a = only_attempt(&out.report.leads[0]);
    assert_eq!(a.disposition.as_deref(), Some("answered"), "{a:?}");
    let connected: Vec<String> = events(&db, "connected")
        .await
        .iter()
        .map(|e| e["agent"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(connected, ["1001", "1002"]);
    assert_eq!(events(&db, "queued").await.len(), 2);
    let syncs = events(&db, "dialer_sync").await;
    let agents: Vec<&str> = syncs.iter().map(|s| s["agent"].as_str().unwrap()).collect();
    assert_eq!(agents, ["1001", "1002"], "{syncs:?}");
    assert_eq!(syncs[0]["transfers"][0]["target"], "agent:1002");
    assert_eq!(syncs[0]["transfers"][0]["flow"], "blindTransfer");
    for (agent, want) in [
        ("1001", ["available", "reserved", "on_call", "available"]),
        ("1002", ["available", "reserved", "on_call", "available"]),
    ] {
        let states: Vec<String> = agent_states(&db, agent)
            .await
            .into_iter()
            .map(|s| s.0)
            .collect();
        assert_eq!(states, want, "{agent}");
    }
}

/// A warm transfer to another agent (`agent:1002`): the ACD reserves 1002 and its phone
/// rings as the consultation leg (the customer on hold: SIPp checks the `sendonly` and
/// `sendrecv` re-INVITEs); after `complete_transfer` the customer is handed over — 1001
/// released (our BYE), 1002 connected on the consultation leg with its own handling, so its
/// hang-up ends the customer's call — and what reaches the customer is 1002's voice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warm_transfer_to_another_agent_hands_the_customer_over_on_the_consultation_leg() {
    let dir = tempfile::tempdir().unwrap();
    let customer_clip = tone(dir.path(), "customer.wav", "u-law", 440, 20.0);
    let mut customer = SippUas::start(
        &HOLD_CUSTOMER.replace("@CLIP@", customer_clip.to_str().unwrap()),
        Transport::Udp,
        &["-m", "1"],
    )
    .unwrap();
    let first_clip = tone(dir.path(), "first.wav", "u-law", 660, 20.0);
    let second_clip = tone(dir.path(), "second.wav", "u-law", 880, 20.0);
    // 1001 registers first, takes the call and waits for our BYE; 1002 answers the
    // consultation, talks 4 s in all and hangs up.
    let mut first = phone(0, &first_clip, None, 1);
    let mut second = phone(0, &second_clip, Some(4000), 1);
    let pcap_dir = tempfile::tempdir().unwrap();
    let pcap = pcap_dir.path().join("customer.pcap");
    let mut tshark = tshark(&format!("udp dst port {}", customer.media_port), &pcap);
    let port = free_port(Transport::Udp).unwrap();
    let api_port = free_port(Transport::Tcp).unwrap();
    let toml = acd_toml(
        "acd-warm-agent",
        &customer.trunk_uri(),
        port,
        &format!("api_listen = \"127.0.0.1:{api_port}\""),
        "mode = \"per_call\"\nwrap_up = 0\nmax_wait = 20\n\
         [[acd.agents]]\nid = \"1001\"\npassword = \"pw-1001\"\n\
         [[acd.agents]]\nid = \"1002\"\npassword = \"pw-1002\"\n",
    );
    let mine = agent_token(dir.path(), "1001").await;
    let base = format!("http://127.0.0.1:{api_port}");
    let api = tokio::spawn(async move {
        let http = reqwest::Client::new();
        agent_until(&http, &base, &mine, "1001", |v| v["state"] == "on_call").await;
        pause_ms(300).await;
        let call = |action: &'static str, target: &str| {
            http.post(format!("{base}/v1/agents/1001/call/{action}"))
                .bearer_auth(&mine)
                .json(&serde_json::json!({"target": target}))
                .send()
        };
        // To itself, or to an agent that does not exist: refused, nothing changes.
        for bad in ["agent:1001", "agent:9999"] {
            let r = call("warm_transfer", bad).await.unwrap();
            assert_eq!(r.status().as_u16(), 409, "{bad}");
        }
        let r = call("warm_transfer", "agent:1002").await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
        // 1002's phone answers at once: 1001 consults it, then leaves.
        pause_ms(1500).await;
        let r = http
            .post(format!("{base}/v1/agents/1001/call/complete_transfer"))
            .bearer_auth(&mine)
            .json(&serde_json::json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
    });
    let (out, db) = run_with_agents(
        dir.path(),
        toml,
        vec![number(0, 1)],
        port,
        vec![
            ("1001", "pw-1001", first.addr.port()),
            ("1002", "pw-1002", second.addr.port()),
        ],
    )
    .await;
    stop_tshark(&mut tshark);
    api.await.expect("the API client's checks");
    for (name, s) in [
        ("customer (held, then resumed)", &mut customer),
        ("1001's phone (our BYE)", &mut first),
        ("1002's phone (its BYE)", &mut second),
    ] {
        assert_eq!(
            s.wait_exit(Duration::from_secs(10)),
            Some(0),
            "{name} SIPp: {}",
            s.dir().display()
        );
    }
    let a = only_attempt(&out.report.leads[0]);
    assert_eq!(a.disposition.as_deref(), Some("answered"), "{a:?}");
    assert_eq!(a.detail.as_deref(), Some("agent_hangup"), "{a:?}");
    let connected: Vec<String> = events(&db, "connected")
        .await
        .iter()
        .map(|e| e["agent"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(connected, ["1001", "1002"]);
    assert_eq!(
        events(&db, "queued").await.len(),
        1,
        "handed over, not queued"
    );
    let evs = call_events(&db).await;
    let flow: Vec<String> = evs
        .iter()
        .filter(|(_, e)| e["type"] == "call_status")
        .map(|(_, e)| {
            format!(
                "{} {}:{}",
                e["agent"].as_str().unwrap(),
                e["flow"].as_str().unwrap(),
                e["status"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        flow,
        [
            "1001 regular:ringing",
            "1001 regular:connected",
            "1001 warmTransfer:startingWarmTransfer",
            "1001 warmTransfer:ringing",
            "1001 warmTransfer:connected",
            "1001 regular:ended",
            "1002 regular:connected",
            "1002 regular:ended",
        ]
    );
    let syncs = events(&db, "dialer_sync").await;
    let agents: Vec<&str> = syncs.iter().map(|s| s["agent"].as_str().unwrap()).collect();
    assert_eq!(agents, ["1001", "1002"], "{syncs:?}");
    assert_eq!(syncs[0]["transfers"][0]["target"], "agent:1002");
    assert_eq!(syncs[0]["transfers"][0]["flow"], "warmTransfer");
    for (agent, want) in [
        ("1001", ["available", "reserved", "on_call", "available"]),
        ("1002", ["available", "reserved", "on_call", "available"]),
    ] {
        let states: Vec<String> = agent_states(&db, agent)
            .await
            .into_iter()
            .map(|s| s.0)
            .collect();
        assert_eq!(states, want, "{agent}");
    }
    // After the hand-over the customer hears 1002 (880 Hz), not 1001 (660 Hz).
    let handed = evs
        .iter()
        .filter(|(_, e)| e["type"] == "call_status" && e["status"] == "ended")
        .map(|(at, _)| epoch(at))
        .next()
        .unwrap();
    let after: Vec<i16> = rtp_audio_to(&pcap, customer.media_port)
        .into_iter()
        .filter(|(t, _, _)| *t > handed + 0.3)
        .flat_map(|(_, _, p)| p)
        .collect();
    assert!(
        after.len() > 4000,
        "{} samples after the hand-over",
        after.len()
    );
    assert!(
        tone_share(&after, 880.0) > 0.5 && tone_share(&after, 660.0) < 0.05,
        "after the hand-over the customer hears the second agent only"
    );
}

const FAILED_REFER_CUSTOMER: &str = include_str!("../sip-fixtures/scenarios/uas_refer_failed.xml");

/// A blind transfer the trunk accepts and whose target is busy (NOTIFY `SIP/2.0 486`): the
/// customer is not hung up but waits again in the queue and is bridged to the next agent
/// (here the same one, free again), until it hangs up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blind_transfer_to_a_busy_target_puts_the_customer_back_in_the_queue() {
    let dir = tempfile::tempdir().unwrap();
    let customer_clip = tone(dir.path(), "customer.wav", "u-law", 440, 10.0);
    let agent_clip = tone(dir.path(), "agent.wav", "u-law", 660, 10.0);
    let mut customer = SippUas::start(
        &FAILED_REFER_CUSTOMER.replace("@CLIP@", customer_clip.to_str().unwrap()),
        Transport::Udp,
        &["-m", "1"],
    )
    .unwrap();
    // Two offers to the one agent, each ended by our BYE.
    let mut agent = phone(0, &agent_clip, None, 2);
    let port = free_port(Transport::Udp).unwrap();
    let api_port = free_port(Transport::Tcp).unwrap();
    let toml = acd_toml(
        "acd-failed-transfer",
        &customer.trunk_uri(),
        port,
        &format!("api_listen = \"127.0.0.1:{api_port}\""),
        "mode = \"per_call\"\nwrap_up = 0\nmax_wait = 20\n\
         [[acd.agents]]\nid = \"1001\"\npassword = \"pw-1001\"\n",
    );
    let mine = agent_token(dir.path(), "1001").await;
    let base = format!("http://127.0.0.1:{api_port}");
    let api = tokio::spawn(transfer_once_on_call(
        base,
        mine,
        "+14155557777".to_string(),
    ));
    let (out, db) = run_with_agents(
        dir.path(),
        toml,
        vec![number(0, 1)],
        port,
        vec![("1001", "pw-1001", agent.addr.port())],
    )
    .await;
    api.await.expect("the API client's checks");
    for (name, s) in [
        ("customer (REFER, NOTIFY 486, its BYE)", &mut customer),
        ("agent (two offers)", &mut agent),
    ] {
        assert_eq!(
            s.wait_exit(Duration::from_secs(10)),
            Some(0),
            "{name} SIPp: {}",
            s.dir().display()
        );
    }
    let a = only_attempt(&out.report.leads[0]);
    assert_eq!(a.detail.as_deref(), Some("remote_bye"), "{a:?}");
    let failed = events(&db, "transfer_failed").await;
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["sip_status"], 486);
    assert!(events(&db, "transferred").await.is_empty());
    assert_eq!(events(&db, "queued").await.len(), 2);
    assert_eq!(events(&db, "connected").await.len(), 2);
    assert_eq!(events(&db, "dialer_sync").await.len(), 2);
    let states: Vec<String> = agent_states(&db, "1001")
        .await
        .into_iter()
        .map(|s| s.0)
        .collect();
    assert_eq!(
        states,
        [
            "available",
            "reserved",
            "on_call",
            "available",
            "reserved",
            "on_call",
            "available"
        ]
    );
}
