//! The web console in a real browser: Debian's Chromium, headless, driven through chromedriver
//! (WebDriver) by fantoccini, against `outdial serve`, a SIPp far end (customers) and a SIPp
//! agent phone on 127.0.0.1. A campaign is built, run and watched in the console the way a
//! supervisor does it, an agent takes a call in its soft console, and the figures the monitor
//! shows are checked against `GET /v1/campaigns/{id}/stats`. Screenshots go to
//! `$CARGO_TARGET_TMPDIR/screenshots` (and to `docs/screenshots` with
//! `OUTDIAL_SCREENSHOTS_TO_DOCS=1`).

mod common;

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::number;
use common::serve::{Api, Server};
use fantoccini::{Client, ClientBuilder, Locator};
use outdial::demo::{SippUas, free_port};
use outdial::sip::message::Transport;
use serde_json::{Value, json};

const OUTCOMES: &str = include_str!("../sip-fixtures/scenarios/uas_outcomes.xml");
const PHONE: &str = include_str!("../sip-fixtures/scenarios/agent_phone.xml");

/// chromedriver on a port of its own; each [`Browser::session`] is one headless Chromium.
struct Driver {
    child: Child,
    url: String,
    profiles: tempfile::TempDir,
}

impl Driver {
    fn start() -> Driver {
        let port = free_port(Transport::Tcp).unwrap();
        // A process group of its own: the browsers it starts go with it (`Drop`), even when
        // a failing test never closed its sessions.
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect(
                "chromedriver (Debian's chromium-driver; scripts/ensure-packages.sh installs it)",
            );
        let t0 = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "chromedriver never listened"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
            profiles: tempfile::tempdir().unwrap(),
        }
    }

    /// A new headless Chromium (its own empty profile), 1400 × 1100.
    async fn session(&self, name: &str) -> Browser {
        let profile = self.profiles.path().join(name);
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({"binary": "/usr/bin/chromium", "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--window-size=1400,1100",
                format!("--user-data-dir={}", profile.display())]}),
        );
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&self.url)
            .await
            .expect("a Chromium session through chromedriver");
        Browser { client }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.wait();
    }
}

struct Browser {
    client: Client,
}

impl Browser {
    async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap();
    }

    /// The element `css`, waited for (30 s at most).
    async fn find(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(30))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css} never appeared: {e}"))
    }

    async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.unwrap()
    }

    /// Waits (30 s at most) until the text of `css` satisfies `ok`; returns it.
    async fn text_until(&self, css: &str, ok: impl Fn(&str) -> bool) -> String {
        let t0 = Instant::now();
        loop {
            let t = match self.client.find(Locator::Css(css)).await {
                Ok(e) => e.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            if ok(&t) {
                return t;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "{css}: {t:?} never as expected"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn exists(&self, css: &str) -> bool {
        self.client.find(Locator::Css(css)).await.is_ok()
    }

    async fn click(&self, css: &str) {
        self.find(css).await.click().await.unwrap();
    }

    async fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css).await;
        e.clear().await.unwrap();
        e.send_keys(text).await.unwrap();
    }

    async fn sign_in(&self, base: &str, token: &str) {
        self.goto(&format!("{base}/#/")).await;
        self.type_into("#token", token).await;
        self.click("#signin button[type=submit]").await;
        self.find("#signout:not([hidden])").await;
    }

    async fn sign_out(&self) {
        self.click("#signout").await;
        self.find("#signin").await;
    }

    /// The visible nav links' texts.
    async fn nav(&self) -> Vec<String> {
        let mut v = Vec::new();
        for a in self.client.find_all(Locator::Css("#nav a")).await.unwrap() {
            v.push(a.text().await.unwrap());
        }
        v
    }

    /// A screenshot of the window as `name`.png (see the module's doc).
    async fn shot(&self, name: &str) {
        let png = self.client.screenshot().await.unwrap();
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), &png).unwrap();
        if std::env::var("OUTDIAL_SCREENSHOTS_TO_DOCS").as_deref() == Ok("1") {
            let docs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots");
            std::fs::create_dir_all(&docs).unwrap();
            std::fs::write(docs.join(format!("{name}.png")), &png).unwrap();
        }
    }
}

/// A shown percentage ("28.6 %") as a number.
fn shown_pct(t: &str) -> f64 {
    t.trim_end_matches('%')
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("{t:?}: {e}"))
}

/// The agents' SIPp phone: answers every offer, talks `talk_ms`, hangs up.
fn phone(dir: &std::path::Path, talk_ms: u32) -> SippUas {
    let clip = common::tone(dir, "agent.wav", "u-law", 660, 2.0);
    let s = PHONE
        .replace("@CODEC@", "0")
        .replace("@CODEC_NAME@", "PCMU")
        .replace("@CLIP@", clip.to_str().unwrap())
        .replace("<!--BYE", "")
        .replace("BYE-->", "")
        .replace("@TALK_MS@", &talk_ms.to_string());
    SippUas::start(&s, Transport::Udp, &["-m", "100"]).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_runs_a_campaign_in_the_console_and_an_agent_takes_a_call() {
    let far = SippUas::start(OUTCOMES, Transport::Udp, &[]).unwrap();
    let server = Server::start(&far.trunk_uri());
    let base = server.base.clone();
    let phones = phone(server.dir.path(), 4000);
    let phones_port = phones.trunk_uri();
    let phones_port = phones_port
        .rsplit(':')
        .next()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let admin = server.admin();
    let supervisor = server.token("supervisor", None);
    let agent_token = server.token("agent", Some("1001"));
    let driver = Driver::start();
    let b = driver.session("supervisor").await;

    // Sign-in: a wrong token is refused with the API's words; the admin sees every page.
    b.goto(&format!("{base}/")).await;
    b.type_into("#token", "odt_wrong").await;
    b.click("#signin button[type=submit]").await;
    let refused = b.text_until("#signin-error", |t| !t.is_empty()).await;
    assert!(refused.contains("unknown or revoked token"), "{refused}");
    b.sign_in(&base, &admin.token).await;
    assert_eq!(
        b.nav().await,
        [
            "Monitor",
            "Campaigns",
            "Call lists",
            "Agents",
            "Do not call",
            "API docs"
        ]
    );

    // A call list uploaded from the form, its bad row reported.
    let mut csv = String::from("number,name\n");
    let outcomes = [0, 0, 2, 0, 4, 0, 5, 8, 0, 7, 0, 6, 0, 2];
    for (i, o) in outcomes.iter().enumerate() {
        csv.push_str(&format!("{},Lead {i}\n", number(*o, 300 + i as u32)));
    }
    csv.push_str("not-a-number,Bad\n");
    b.click("#nav a[href='#/lists']").await;
    b.type_into("#list-name", "spring leads").await;
    b.type_into("#list-csv", &csv).await;
    b.click("#upload-list").await;
    let stored = b.text("#upload-result p.ok").await;
    assert!(
        stored.contains(&format!("{} numbers stored", outcomes.len())),
        "{stored}"
    );
    let row_error = b.text("#row-errors").await;
    assert!(
        row_error.contains(&(outcomes.len() + 2).to_string()) && row_error.contains("not-a-number"),
        "{row_error}"
    );
    let (_, lists) = admin.call("GET", "/v1/call-lists", None).await;
    let list_id = lists[0]["id"].as_i64().unwrap();
    assert_eq!(lists[0]["numbersCount"], json!(outcomes.len()), "{lists}");

    // A campaign from the form: a bad cps gets the API's own message at the field.
    b.goto(&format!("{base}/#/campaigns")).await;
    b.click("#new-campaign").await;
    b.type_into("#f-name", "spring").await;
    b.find(&format!("#f-callLists option[value='{list_id}']"))
        .await
        .click()
        .await
        .unwrap();
    b.type_into("#f-callerId", "+14155550000").await;
    b.type_into("#f-cps", "fast").await;
    b.click("#save-campaign").await;
    let error = b.text_until("#form-error", |t| !t.is_empty()).await;
    let (status, problem) = admin
        .call(
            "POST",
            "/v1/campaigns",
            Some(json!({"name": "spring", "callLists": [list_id], "callerId": "+14155550000", "cps": "fast"})),
        )
        .await;
    assert_eq!(status.as_u16(), 422);
    assert!(
        error.contains(problem["detail"].as_str().unwrap()) && error.contains("cps"),
        "{error} vs {problem}"
    );
    assert_eq!(
        b.find("#f-cps")
            .await
            .attr("class")
            .await
            .unwrap()
            .as_deref(),
        Some("invalid")
    );
    b.type_into("#f-cps", "3").await;
    b.type_into("#f-maxConcurrent", "4").await;
    b.type_into("#f-holdTime", "60").await;
    b.find("#f-onHuman")
        .await
        .select_by_value("queue")
        .await
        .unwrap();
    let acd = json!({"mode": "per_call", "maxWait": 20, "wrapUp": 2,
        "dispositions": ["sale", "no_sale"],
        "agents": [{"id": "1001", "uri": format!("sip:1001@127.0.0.1:{phones_port}")},
                   {"id": "1002", "uri": format!("sip:1002@127.0.0.1:{phones_port}")}]});
    b.type_into("#f-acd", &acd.to_string()).await;
    b.type_into(
        "#f-endpoint",
        r#"{"type": "progressive", "boostFactor": 1.5}"#,
    )
    .await;
    b.click("#save-campaign").await;
    let state = b.text("#campaign-state").await;
    assert_eq!(state, "draft");
    let (_, campaigns) = admin.call("GET", "/v1/campaigns", None).await;
    let id = campaigns[0]["id"].as_i64().unwrap();
    assert_eq!(
        campaigns[0]["acd"]["dispositions"],
        json!(["sale", "no_sale"])
    );

    // The agent signs in to its soft console (a second browser).
    let a = driver.session("agent").await;
    a.sign_in(&base, &agent_token).await;
    assert_eq!(a.nav().await, ["My console", "API docs"]);
    a.find("#agent-console").await;

    // Start from the campaign page; watch the monitor while it dials.
    b.click("button[data-command=start]").await;
    b.text_until("#campaign-state", |t| t == "active").await;
    b.goto(&format!("{base}/#/monitor/{id}")).await;
    b.find("#monitor").await;
    // The agent: the customer's lead on screen, then its disposition from a button.
    let lead_number = a
        .text_until("#lead [data-lead=number]", |t| t.starts_with('+'))
        .await;
    let lead_name = a.text("#lead [data-attribute=name]").await;
    assert!(lead_name.starts_with("Lead "), "{lead_name}");
    let i: usize = lead_name["Lead ".len()..].parse().unwrap();
    assert_eq!(lead_number, number(outcomes[i], 300 + i as u32));
    // While the campaign runs: the monitor's picture.
    b.text_until("[data-stat=attempts]", |t| {
        t.parse::<u32>().unwrap_or(0) >= 11
    })
    .await;
    b.shot("monitor").await;
    // On the line: the call controls and the disposition buttons.
    a.find("#call-controls button[data-action=hold]").await;
    a.find("#dispositions button[data-disposition=sale]").await;
    a.shot("agent-console").await;
    a.click("#dispositions button[data-disposition=sale]").await;
    // (The agent's current or last call: a newer one than the lead read above if the
    // agent took another meanwhile; the banner names it.)
    let saved = a
        .text_until("#banner", |t| {
            t.starts_with("Disposition “sale” saved for +")
        })
        .await;
    let sold = saved.rsplit(' ').next().unwrap().to_string();

    admin.until_completed(id, Duration::from_secs(90)).await;
    let (_, calls) = admin
        .call("GET", &format!("/v1/calls?campaignId={id}"), None)
        .await;
    assert!(
        calls
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["number"] == sold.as_str() && c["agentDisposition"] == "sale"),
        "{calls}"
    );
    // The CDR carries each connected call's agent part (from its DIALER.SYNC).
    let cdr = reqwest::Client::new()
        .get(format!("{base}/v1/campaigns/{id}/cdr"))
        .bearer_auth(&admin.token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut rows = csv::Reader::from_reader(cdr.as_bytes());
    let head = rows.headers().unwrap().clone();
    let col = |name: &str| head.iter().position(|h| h == name).unwrap();
    let (number, agent, talk) = (col("number"), col("agent"), col("talkMs"));
    let sold_row = rows
        .records()
        .map(|r| r.unwrap())
        .find(|r| &r[number] == sold.as_str() && !r[agent].is_empty())
        .unwrap_or_else(|| panic!("{sold} with its agent in\n{cdr}"));
    assert!(["1001", "1002"].contains(&&sold_row[agent]), "{cdr}");
    assert!(sold_row[talk].parse::<u64>().unwrap() > 0, "{cdr}");

    // The monitor's figures are the API's.
    let (_, stats) = admin
        .call("GET", &format!("/v1/campaigns/{id}/stats"), None)
        .await;
    let final_leads = stats["leadsFinal"].to_string();
    b.text_until("[data-stat=leadsFinal]", |t| t == final_leads)
        .await;
    for key in ["attempts", "answered", "queued", "connected", "abandoned"] {
        assert_eq!(
            b.text(&format!("[data-stat={key}]")).await,
            stats[key].to_string(),
            "{key}: {stats}"
        );
    }
    assert!(stats["connected"].as_u64().unwrap() >= 1, "{stats}");
    // The last hour's attempts per minute (from GET /v1/stats/series) add up to them too.
    let t0 = Instant::now();
    loop {
        let hour = b
            .find("#chart-minutes")
            .await
            .attr("data-attempts")
            .await
            .unwrap();
        if hour.as_deref() == Some(stats["attempts"].to_string().as_str()) {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "{hour:?} vs {stats}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The pacer's own figures while it ran: the abandon rate its cap applies to, the ratio.
    let pacing = &stats["pacing"];
    assert!(pacing["dialRatio"].as_f64().is_some(), "{stats}");
    let ratio: f64 = b.text("[data-stat=dialRatio]").await.parse().unwrap();
    assert!((ratio - pacing["dialRatio"].as_f64().unwrap()).abs() <= 0.0051);
    for (stat, v) in [
        ("answerRate", &stats["answerRate"]),
        ("abandonRate", &pacing["abandonRate"]),
        ("amdHuman", &stats["amdShares"]["human"]),
        ("amdMachine", &stats["amdShares"]["machine"]),
    ] {
        let shown = shown_pct(&b.text(&format!("[data-stat={stat}]")).await);
        let api = v.as_f64().unwrap_or(0.0) * 100.0;
        assert!(
            (shown - api).abs() <= 0.051,
            "{stat}: shown {shown}, API {api}"
        );
    }
    // The campaign page: its statistics, as the API has them.
    b.goto(&format!("{base}/#/campaigns/{id}")).await;
    b.text_until("#campaign-state", |t| t == "completed").await;
    assert_eq!(
        b.text("#campaign-stats [data-stat=attempts]").await,
        stats["attempts"].to_string()
    );
    let rate = shown_pct(&b.text("#campaign-stats [data-stat=answerRate]").await);
    assert!((rate - stats["answerRate"].as_f64().unwrap() * 100.0).abs() <= 0.051);
    b.shot("campaign").await;
    b.click("#cdr").await;
    assert!(!b.find("#banner").await.is_displayed().await.unwrap());

    admin_pages(&b, &base, &admin).await;
    supervisor_pages(&b, &base, &supervisor).await;
    a.client.close().await.unwrap();
    b.client.close().await.unwrap();
    drop(phones);
    assert_eq!(server.stop(), Some(0));
}

/// The do-not-call page (add, remove), the agents page (add) and the API docs.
async fn admin_pages(b: &Browser, base: &str, admin: &Api) {
    b.goto(&format!("{base}/#/dnc")).await;
    b.type_into("#dnc-add input[name=numbers]", "+14155550199, nope")
        .await;
    b.click("#dnc-add button[type=submit]").await;
    let said = b.text_until("#banner", |t| t.contains("added")).await;
    assert!(said.contains("1 added") && said.contains("nope:"), "{said}");
    b.find("tr[data-number='+14155550199']").await;
    let (_, listed) = admin.call("GET", "/v1/dnc/+14155550199", None).await;
    assert_eq!(listed["listed"], json!(true));
    b.click("button[data-remove='+14155550199']").await;
    b.text_until("#banner", |t| t.contains("removed")).await;
    assert!(!b.exists("tr[data-number='+14155550199']").await);
    let (_, listed) = admin.call("GET", "/v1/dnc/+14155550199", None).await;
    assert_eq!(listed["listed"], json!(false));

    b.goto(&format!("{base}/#/agents")).await;
    b.type_into("#add-agent input[name=agent]", "1003").await;
    b.type_into("#add-agent input[name=password]", "secret-1003")
        .await;
    b.click("#add-agent button[type=submit]").await;
    b.text_until("#banner", |t| t.contains("Agent 1003 added"))
        .await;
    let (_, agents) = admin.call("GET", "/v1/agents", None).await;
    assert!(
        agents.as_array().unwrap().iter().any(|a| a["id"] == "1003"),
        "{agents}"
    );

    // Swagger UI from the binary, over the service's OpenAPI document.
    b.goto(&format!("{base}/docs")).await;
    b.find(".opblock").await;
    let ops = b
        .client
        .find_all(Locator::Css(".opblock"))
        .await
        .unwrap()
        .len();
    let (_, doc) = admin.call("GET", "/v1/openapi.json", None).await;
    let documented: usize = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|p| p.as_object().unwrap().len())
        .sum();
    assert_eq!(ops, documented, "every operation shown");
    let page: Value = b
        .client
        .execute("return document.body.innerText", vec![])
        .await
        .unwrap();
    assert!(
        page.as_str().unwrap().contains("/v1/campaigns/{id}/stats"),
        "{page}"
    );
}

/// A supervisor is not offered what needs the admin role.
async fn supervisor_pages(b: &Browser, base: &str, token: &str) {
    b.goto(&format!("{base}/")).await;
    b.sign_out().await;
    b.sign_in(base, token).await;
    b.goto(&format!("{base}/#/campaigns")).await;
    b.find("#campaigns").await;
    assert!(!b.exists("#new-campaign").await);
    assert!(b.exists("button[data-command=remove]").await);
    b.goto(&format!("{base}/#/lists")).await;
    b.find("#lists").await;
    assert!(!b.exists("#upload").await);
    b.goto(&format!("{base}/#/agents")).await;
    b.find("#agents").await;
    assert!(!b.exists("#add-agent").await);
    b.goto(&format!("{base}/#/dnc")).await;
    b.find("#dnc").await;
    assert!(!b.exists("#dnc-add").await);
    assert!(!b.exists("button[data-remove]").await);
}
