//! Every campaign setting has a range, checked once for the CLI (TOML) and the API (JSON):
//! the values that once panicked a task of `outdial serve` are refused with a problem naming
//! the field and its range; any accepted value builds every runtime value without a panic
//! (property tests); axum's own rejections are problem+json too.

use std::sync::Arc;

use outdial::api::{ApiState, router};
use outdial::campaign::config::CampaignConfig;
use outdial::service::Service;
use outdial::store::Store;
use proptest::prelude::*;
use serde_json::{Value, json};

const MAX: u64 = u64::MAX;

async fn serve() -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("o.db")).await.unwrap();
    store
        .create_token("t", "admin", None, "admin-token-0123456789")
        .await
        .unwrap();
    let service = Service::new(store.clone(), toml::Table::new());
    let state = Arc::new(ApiState {
        store,
        engine: std::sync::OnceLock::new(),
        live: Some(service.live.clone()),
        service: Some(service),
    });
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move {
        let _keep = dir;
        axum::serve(l, router(state)).await.unwrap()
    });
    (base, "admin-token-0123456789".into())
}

fn body(extra: Value) -> Value {
    let mut b = json!({"name": "c1", "callerId": "+14155550000", "trunk": "sip:127.0.0.1:5080",
                       "localAddress": "127.0.0.1:0"});
    for (k, v) in extra.as_object().unwrap() {
        b[k] = v.clone();
    }
    b
}

fn acd(extra: Value) -> Value {
    let mut a = json!({"agents": [{"id": "a1", "password": "secret-pass"}]});
    for (k, v) in extra.as_object().unwrap() {
        a[k] = v.clone();
    }
    a
}

#[tokio::test]
async fn the_values_that_crashed_a_task_are_refused_with_the_field_and_its_range() {
    let (base, token) = serve().await;
    let http = reqwest::Client::new();
    let hook =
        |q: Value| json!({"url": "http://127.0.0.1:9/h", "secret": "0123456789abcdef", "queue": q});
    let cases = [
        (
            body(json!({"keepaliveInterval": MAX})),
            "keepaliveInterval",
            "0..=3600",
        ),
        (
            body(json!({"mediaTimeout": MAX})),
            "mediaTimeout",
            "0..=86400",
        ),
        (
            body(json!({"acd": acd(json!({"waitForAgents": MAX})), "onHuman": "queue"})),
            "acd.waitForAgents",
            "0..=86400",
        ),
        (
            body(json!({"webhook": hook(json!(MAX))})),
            "webhook.queue",
            "1..=1000000",
        ),
        (body(json!({"cps": 1e-300})), "cps", "0.001..=100000"),
        (
            body(
                json!({"rescheduleRules": [{"disposition": "busy", "retryAfter": MAX, "maxAttempts": 2}]}),
            ),
            "rescheduleRules.retryAfter",
            "0..=604800",
        ),
        (
            body(json!({"localAddress": "0.0.0.0:5060"})),
            "localAddress",
            "advertisedAddress",
        ),
    ];
    for (b, field, range) in cases {
        let r = http
            .post(format!("{base}/v1/campaigns"))
            .bearer_auth(&token)
            .json(&b)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 422, "{b}");
        assert_eq!(
            r.headers()["content-type"],
            "application/problem+json",
            "{b}"
        );
        let p: Value = r.json().await.unwrap();
        assert_eq!(p["field"], field, "{p}");
        assert!(p["detail"].as_str().unwrap().contains(range), "{p}");
    }
    // The same limits hold for a campaign file (the CLI).
    let toml = "name = \"c\"\ntrunk = \"sip:127.0.0.1:5080\"\ncaller_id = \"+1\"\n\
                local_address = \"127.0.0.1:0\"\nkeepalive_interval = 9223372036854775807\n";
    let cfg: CampaignConfig = toml::from_str(toml).unwrap();
    let e = cfg.validate().unwrap_err().to_string();
    assert!(e.starts_with("keepalive_interval: must be 0..=3600"), "{e}");
}

#[tokio::test]
async fn axum_rejections_are_problems() {
    let (base, token) = serve().await;
    let http = reqwest::Client::new();
    let check = |r: reqwest::Response, status: u16| {
        assert_eq!(r.status(), status, "{}", r.url());
        assert_eq!(
            r.headers()["content-type"],
            "application/problem+json",
            "{}",
            r.url()
        );
        r
    };
    // 405, with its Allow header kept.
    let r = check(
        http.delete(format!("{base}/v1/health"))
            .send()
            .await
            .unwrap(),
        405,
    );
    assert!(r.headers().contains_key("allow"));
    let p: Value = r.json().await.unwrap();
    assert_eq!(p["status"], 405);
    // 413: a body over the 1 MiB limit.
    let big = format!("{{\"name\": \"{}\"}}", "x".repeat(2 * 1024 * 1024));
    let r = http
        .post(format!("{base}/v1/campaigns"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    check(r, 413);
    // A bad query string, a path segment that is not a number, bad UTF-8 in a path.
    for (url, status) in [
        (format!("{base}/v1/calls?limit=many"), 400),
        (format!("{base}/v1/campaigns/abc"), 404),
        (format!("{base}/v1/calls?campaignId=seven"), 400),
        (format!("{base}/v1/agents/%FF%FE"), 400),
        (format!("{base}/nowhere"), 404),
    ] {
        let r = http.get(&url).bearer_auth(&token).send().await.unwrap();
        let r = check(r, status);
        let p: Value = r.json().await.unwrap();
        assert!(!p["detail"].as_str().unwrap().is_empty(), "{url}: {p}");
    }
}

/// A numeric setting and the values a generator may give it: inside, at and beyond its
/// range, and the extremes of its type.
fn any_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        (0u64..4_000_000).prop_map(Value::from),
        Just(Value::from(u64::MAX)),
        Just(Value::from(u32::MAX)),
        Just(Value::from(0)),
        (-1e6f64..1e6).prop_map(Value::from),
        Just(json!(1e-300)),
        Just(json!(1e300)),
        Just(json!(-1)),
    ]
}

const TOP: &[&str] = &[
    "cps",
    "maxConcurrent",
    "ringTimeout",
    "holdTime",
    "failoverTimeout",
    "sessionExpires",
    "keepaliveInterval",
    "trunkDownAfter",
    "mediaTimeout",
    "voicemailWait",
];
const ACD: &[&str] = &[
    "maxWait",
    "offerTimeout",
    "wrapUp",
    "maxMisses",
    "waitForAgents",
    "minExpires",
    "maxExpires",
    "maxAuthFailures",
    "blockSecs",
];
const ENDPOINT: &[&str] = &[
    "boostFactor",
    "maxWaitingCalls",
    "abandonWindowHours",
    "autoPauseAfter",
    "autoPauseWaiting",
];
const WEBHOOK: &[&str] = &["maxAttempts", "queue", "timeout"];
/// Settings that take fractions.
const REAL: &[&str] = &[
    "cps",
    "hold_time",
    "failover_timeout",
    "acd.max_wait",
    "endpoint.boost_factor",
];

/// Mostly a value inside the setting's documented range (from `CampaignConfig::RANGES`),
/// sometimes anything (`any_value`).
fn value_for(table: &str, key: &str) -> BoxedStrategy<Value> {
    let snake = outdial::service::convert::camel_to_snake(key);
    let name = if table.is_empty() {
        snake
    } else {
        format!("{table}.{snake}")
    };
    let (lo, hi) = CampaignConfig::RANGES
        .iter()
        .find(|r| r.0 == name)
        .map(|r| (r.1, r.2))
        .unwrap_or_else(|| panic!("{name} has no range"));
    let real = REAL.contains(&name.as_str());
    let inside = (lo..=hi).prop_map(move |v| {
        if real {
            json!(v)
        } else {
            json!(v.round() as u64)
        }
    });
    prop_oneof![9 => inside, 1 => any_value()].boxed()
}

fn values(table: &'static str, keys: &'static [&'static str]) -> BoxedStrategy<Vec<Value>> {
    keys.iter()
        .map(|k| value_for(table, k))
        .collect::<Vec<_>>()
        .boxed()
}

fn body_from(
    top: Vec<Value>,
    acd_v: Vec<Value>,
    ep: Vec<Value>,
    wh: Vec<Value>,
    retry: Value,
) -> Value {
    let mut b = body(json!({"rtpPortMin": 10000, "rtpPortMax": 60000}));
    for (k, v) in TOP.iter().zip(top) {
        b[*k] = v;
    }
    let mut a = acd(json!({}));
    for (k, v) in ACD.iter().zip(acd_v) {
        a[*k] = v;
    }
    let mut e = json!({"type": "progressive"});
    for (k, v) in ENDPOINT.iter().zip(ep) {
        e[*k] = v;
    }
    let mut w = json!({"url": "http://127.0.0.1:9/h", "secret": "0123456789abcdef"});
    for (k, v) in WEBHOOK.iter().zip(wh) {
        w[*k] = v;
    }
    b["acd"] = a;
    b["endpoint"] = e;
    b["webhook"] = w;
    b["onHuman"] = json!("queue");
    b["rescheduleRules"] = json!([{"disposition": "busy", "retryAfter": retry, "maxAttempts": 3}]);
    b
}

/// A campaign body with every numeric setting drawn by `value_for`, some tables left out
/// (so that the top-level checks are reached alone too).
fn api_body() -> impl Strategy<Value = Value> {
    (
        values("", TOP),
        values("acd", ACD),
        values("endpoint", ENDPOINT),
        values("webhook", WEBHOOK),
        value_for("reschedule_rules", "retryAfter"),
        proptest::collection::vec(any::<bool>(), 4),
    )
        .prop_map(|(top, acd_v, ep, wh, retry, keep)| {
            let mut b = body_from(top, acd_v, ep, wh, retry);
            let o = b.as_object_mut().unwrap();
            for (k, on) in ["acd", "endpoint", "webhook", "rescheduleRules"]
                .iter()
                .zip(&keep)
            {
                if !on {
                    o.remove(*k);
                    if *k == "acd" {
                        o.remove("onHuman");
                        o.remove("endpoint");
                    }
                }
            }
            b
        })
}

/// The API's conversion: `Ok(())` accepted (and every runtime value built without a panic),
/// `Err(problem)` refused.
fn check_api_body(b: &Value) -> Result<(), outdial::api::problem::Problem> {
    let (_, settings, _) = outdial::service::convert::split_body(b.clone()).unwrap();
    let cfg = outdial::service::convert::campaign_config(&toml::Table::new(), settings)?;
    outdial::fuzzing::exercise_runtime(&cfg, std::time::Instant::now());
    Ok(())
}

/// The generator reaches accepted bodies (a property over refusals only would prove little).
#[test]
fn the_api_property_reaches_accepted_bodies() {
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = api_body();
    let accepted = (0..300)
        .filter(|_| check_api_body(&strategy.new_tree(&mut runner).unwrap().current()).is_ok())
        .count();
    assert!(accepted >= 10, "only {accepted} of 300 bodies accepted");
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 400,
        failure_persistence: None,
        .. ProptestConfig::default()
    })]

    /// API bodies: accepted ones build every runtime value without a panic; refused ones
    /// name a field (and, for a range, the range and the value).
    #[test]
    fn any_accepted_api_value_runs_and_refusals_name_the_field(b in api_body()) {
        if let Err(p) = check_api_body(&b) {
            prop_assert_eq!(p.status, 422);
            prop_assert!(p.field.as_deref().is_some_and(|f| !f.is_empty()), "{:?}", p);
            if p.detail.contains("must be") && p.detail.contains("..=") {
                prop_assert!(p.detail.contains(", got "), "{:?}", p);
            }
        }
    }

    /// Campaign files (the CLI) go through the same checks.
    #[test]
    fn any_accepted_toml_value_runs(
        keepalive in any::<u64>(), media in any::<u64>(), cps in any::<f64>(),
        ring in any::<u64>(), retry in any::<u64>(), down in any::<u32>(),
    ) {
        let toml = format!(
            "name = \"c\"\ntrunk = \"sip:127.0.0.1:5080\"\ncaller_id = \"+1\"\n\
             local_address = \"127.0.0.1:0\"\nkeepalive_interval = {keepalive}\n\
             media_timeout = {media}\ncps = {cps:?}\nring_timeout = {ring}\ntrunk_down_after = {down}\n\
             [[reschedule_rules]]\ndisposition = \"busy\"\nretry_after = {retry}\nmax_attempts = 2\n"
        );
        if let Ok(cfg) = toml::from_str::<CampaignConfig>(&toml)
            && cfg.validate().is_ok()
        {
            outdial::fuzzing::exercise_runtime(&cfg, std::time::Instant::now());
        }
    }
}

/// A campaign with its settings at their maxima (and the call rate at its floor) runs to the
/// end against a SIPp far end: one lead answered, one busy and final.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_at_their_maxima_run_a_campaign() {
    let uas = outdial::demo::SippUas::start(
        outdial::demo::OUTCOMES_SCENARIO,
        outdial::sip::message::Transport::Udp,
        &[],
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut toml = String::new();
    for (name, lo, hi, _) in CampaignConfig::RANGES {
        let (table, key) = name.split_once('.').unwrap_or(("", name));
        if !table.is_empty() {
            continue;
        }
        let v = match *name {
            // Those lengthen the run itself: keep them short, at their floor.
            "ring_timeout" | "hold_time" => *lo,
            // One call per second at most here, the first at once: cps at its floor would
            // only dial the first lead.
            "cps" => 2.0,
            "max_concurrent" => 2.0,
            _ => *hi,
        };
        toml.push_str(&format!(
            "{key} = {}\n",
            if v.fract() == 0.0 {
                format!("{}", v as u64)
            } else {
                format!("{v}")
            }
        ));
    }
    toml.push_str(
        "amd = { profile = \"off\" }\n\
         [[reschedule_rules]]\ndisposition = \"busy\"\nretry_after = 604800\nmax_attempts = 1\n\
         [webhook]\nurl = \"http://127.0.0.1:9/h\"\nsecret = \"0123456789abcdef\"\n\
         queue = 1000000\ntimeout = 600\nmax_attempts = 100\n",
    );
    let toml = format!(
        "{}{toml}",
        common::campaign_toml("maxima", &uas.trunk_uri(), "")
    );
    let numbers = vec![common::number(0, 1), common::number(2, 2)];
    let (out, _) = common::run_campaign(dir.path(), &toml, &numbers).await;
    assert_eq!(out.report.summary.leads_final, 2, "{toml}");
    assert_eq!(out.report.summary.answered, 1);
}

mod common;

/// The service file's own numbers have ranges too.
#[test]
fn service_settings_out_of_range_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for (line, field) in [
        ("shutdown_grace = 18446744073709551615", "shutdown_grace"),
        ("cps = 1e-300", "cps"),
        ("max_concurrent = 0", "max_concurrent"),
    ] {
        let p = dir.path().join("s.toml");
        std::fs::write(
            &p,
            format!("listen = \"127.0.0.1:0\"\ndb = \"x.db\"\n{line}\n[campaign_defaults]\n"),
        )
        .unwrap();
        let e = format!(
            "{:#}",
            outdial::service::ServiceConfig::load(&p).unwrap_err()
        );
        assert!(e.contains(field), "{line}: {e}");
    }
}
