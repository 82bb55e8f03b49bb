//! `outdial serve` through a real HTTP client: the real binary, a SIPp far end on 127.0.0.1,
//! tokens made with `outdial token create`. Every endpoint, bad bodies (4xx, nothing stored),
//! missing tokens and roles, and a campaign's whole lifecycle through its calls, events, CDRs
//! and statistics.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::number;
use common::serve::{Api, Server};
use outdial::demo::{SippUas, free_port};
use outdial::sip::message::Transport;
use reqwest::StatusCode;
use serde_json::{Value, json};

const OUTCOMES: &str = include_str!("../sip-fixtures/scenarios/uas_outcomes.xml");
const BIN: &str = env!("CARGO_BIN_EXE_outdial");

/// Two `outdial serve` on one SQLite file: the second refuses to start, naming the first
/// (its pid), and the first keeps serving.
#[test]
fn a_second_serve_on_the_same_sqlite_file_refuses_to_start() {
    let first = Server::start("sip:127.0.0.1:9");
    let port = free_port(Transport::Tcp).unwrap();
    let cfg = first.dir.path().join("second.toml");
    std::fs::write(
        &cfg,
        format!(
            "listen = \"127.0.0.1:{port}\"\ndb = \"{}\"\n[campaign_defaults]\n\
             trunk = \"sip:127.0.0.1:9\"\nlocal_address = \"127.0.0.1:0\"\n",
            first.db
        ),
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("is in use by another outdial process")
            && err.contains(&format!("pid {}", first.child.id())),
        "{err}"
    );
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    assert!(std::net::TcpStream::connect(first.base.trim_start_matches("http://")).is_ok());
    assert_eq!(first.stop(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_api_end_to_end() {
    let far = SippUas::start(OUTCOMES, Transport::Udp, &[]).unwrap();
    service_api_end_to_end(Server::start(&far.trunk_uri())).await;
}

/// The same on PostgreSQL: a server of its own, the service's store a URL to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_api_end_to_end_on_postgresql() {
    let pg = common::pg::PgServer::start();
    let far = SippUas::start(OUTCOMES, Transport::Udp, &[]).unwrap();
    let server = Server::start_on(tempfile::tempdir().unwrap(), &far.trunk_uri(), "", pg.url());
    service_api_end_to_end(server).await;
    // Everything went to the PostgreSQL server.
    let store = outdial::store::Store::connect(&pg.url()).await.unwrap();
    assert_eq!(store.backend(), outdial::store::Backend::Postgres);
    let (campaigns, attempts): (i64, i64) =
        sqlx::query_as("SELECT (SELECT COUNT(*) FROM campaigns), (SELECT COUNT(*) FROM attempts)")
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert!(
        campaigns >= 2 && attempts >= 3,
        "{campaigns} campaigns, {attempts} attempts"
    );
}

async fn service_api_end_to_end(server: Server) {
    let admin = server.admin();
    let supervisor = admin.as_role(&server.token("supervisor", None));
    let agent = admin.as_role(&server.token("agent", Some("1001")));
    let nobody = admin.as_role("");
    let forged = admin.as_role("odt_0000");

    // Health needs no token; everything else does, with the right role.
    assert_eq!(
        nobody.call("GET", "/v1/health", None).await.0,
        StatusCode::OK
    );
    // Metrics before any campaign: every family described, the process's own figures.
    let m = reqwest::get(format!("{}/metrics", admin.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for (name, kind, _) in outdial::notify::metrics::FAMILIES {
        let kind = match kind {
            outdial::notify::metrics::Kind::Counter => "counter",
            outdial::notify::metrics::Kind::Gauge => "gauge",
        };
        assert!(
            m.contains(&format!("# HELP {name} ")),
            "HELP {name} in\n{m}"
        );
        assert!(
            m.contains(&format!("# TYPE {name} {kind}")),
            "TYPE {name} in\n{m}"
        );
    }
    for name in [
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_start_time_seconds",
    ] {
        let value = m
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} in\n{m}"));
        let value: f64 = value
            .parse()
            .unwrap_or_else(|e| panic!("{name} {value}: {e}"));
        // CPU time counts in clock ticks (10 ms): a service that has idled since its start
        // may truly show 0; the other figures are positive for any running process.
        if name == "process_cpu_seconds_total" {
            assert!(value >= 0.0 && value.is_finite(), "{name} {value}");
        } else {
            assert!(value > 0.0, "{name} {value}");
        }
    }
    assert!(m.contains("outdial_build_info{version=\""), "{m}");
    for api in [&nobody, &forged] {
        let (s, p) = api.call("GET", "/v1/campaigns", None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{p}");
        assert_eq!(p["status"], 401);
    }
    assert_eq!(
        agent.call("GET", "/v1/campaigns", None).await.0,
        StatusCode::FORBIDDEN
    );
    let (s, _) = supervisor
        .call(
            "POST",
            "/v1/campaigns",
            Some(json!({"name": "x", "callerId": "+1"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "creating needs admin");

    // Agents: created with a password (kept as HA1), listed offline until a campaign runs
    // them; an agent changes its own password, not another's.
    let (s, p) = admin
        .call(
            "POST",
            "/v1/agents",
            Some(json!({"id": "bad id", "password": "long-enough"})),
        )
        .await;
    assert_eq!(
        (s, p["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("id")),
        "{p}"
    );
    let (s, p) = admin
        .call(
            "POST",
            "/v1/agents",
            Some(json!({"id": "1001", "password": "short"})),
        )
        .await;
    assert_eq!(
        (s, p["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("password")),
        "{p}"
    );
    let (s, _) = supervisor
        .call(
            "POST",
            "/v1/agents",
            Some(json!({"id": "1001", "password": "long-enough"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, a) = admin
        .call(
            "POST",
            "/v1/agents",
            Some(json!({"id": "1001", "password": "long-enough"})),
        )
        .await;
    assert_eq!(
        (s, &a["realm"]),
        (StatusCode::CREATED, &json!("outdial")),
        "{a}"
    );
    let (s, _) = admin
        .call(
            "POST",
            "/v1/agents",
            Some(json!({"id": "1001", "password": "other-one"})),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    admin
        .call(
            "POST",
            "/v1/agents",
            Some(json!({"id": "1002", "password": "long-enough"})),
        )
        .await;
    let (_, mine) = agent.call("GET", "/v1/agents", None).await;
    assert_eq!(
        mine,
        json!([{"id": "1001", "state": "offline", "reason": "not_in_a_running_campaign",
        "in_state_ms": 0, "last_call": null, "awaiting_disposition": false, "pause_pending": null,
        "stats": {"agent": "1001", "handled": 0, "missed": 0, "talk_ms": 0, "wrap_up_ms": 0,
                  "logged_in_ms": 0, "occupancy": 0.0}}]),
        "an agent sees itself only"
    );
    let (_, all) = supervisor.call("GET", "/v1/agents", None).await;
    assert_eq!(all.as_array().unwrap().len(), 2);
    let (s, _) = agent
        .call(
            "PUT",
            "/v1/agents/1001/password",
            Some(json!({"password": "new-password-1"})),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = agent
        .call(
            "PUT",
            "/v1/agents/1002/password",
            Some(json!({"password": "new-password-1"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = admin
        .call(
            "PUT",
            "/v1/agents/9999/password",
            Some(json!({"password": "new-password-1"})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, p) = agent
        .call(
            "PUT",
            "/v1/agents/1001/state",
            Some(json!({"state": "paused"})),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::CONFLICT,
        "no running campaign has agents: {p}"
    );
    let (_, q) = supervisor.call("GET", "/v1/queues", None).await;
    assert_eq!(q, json!([]));
    // The do-not-call list.
    let (s, d) = admin
        .call(
            "POST",
            "/v1/dnc",
            Some(json!({"numbers": ["+14155559999", "nope"]})),
        )
        .await;
    assert_eq!((s, &d["added"]), (StatusCode::OK, &json!(1)), "{d}");
    assert_eq!(d["errors"][0]["index"], 1);
    let (_, d) = supervisor.call("GET", "/v1/dnc/+14155559999", None).await;
    assert_eq!(d["listed"], true);
    let (_, d) = supervisor.call("GET", "/v1/dnc/+14155559998", None).await;
    assert_eq!(d["listed"], false);
    let (s, _) = supervisor
        .call(
            "POST",
            "/v1/dnc",
            Some(json!({"numbers": ["+14155559997"]})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // Call lists: JSON with a bad row, CSV; bad bodies store nothing.
    let good = [number(0, 1), number(2, 1), number(0, 2)];
    let (s, list) = admin
        .call(
            "POST",
            "/v1/call-lists",
            Some(json!({"name": "north", "numbers": [
                {"number": good[0], "attributes": {"name": "Ann", "tier": 2}},
                {"number": "12ab"},
                {"number": good[1]},
            ]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{list}");
    assert_eq!(list["numbersCount"], 2);
    assert_eq!(list["errors"][0]["index"], 1, "{list}");
    let csv = format!("number,name\n{},Bob\nnot-a-number,Eve\n", good[2]);
    let r = admin
        .http
        .post(format!("{}/v1/call-lists?name=south", admin.base))
        .bearer_auth(&admin.token)
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let south: Value = r.json().await.unwrap();
    assert_eq!(south["numbersCount"], 1);
    assert_eq!(south["errors"][0]["line"], 3, "{south}");
    let r = admin
        .http
        .post(format!("{}/v1/call-lists", admin.base))
        .bearer_auth(&admin.token)
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        r.headers()["content-type"],
        "application/problem+json",
        "errors are RFC 9457 problems"
    );
    let (s, p) = admin
        .call(
            "POST",
            "/v1/call-lists",
            Some(json!({"name": "bad", "numbers": [{"number": "x"}]})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
    let (s, p) = admin
        .call(
            "POST",
            "/v1/call-lists",
            Some(json!({"name": "bad", "numbers": [], "extra": 1})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
    let (_, lists) = supervisor.call("GET", "/v1/call-lists", None).await;
    assert_eq!(
        lists.as_array().unwrap().len(),
        2,
        "refused uploads stored nothing"
    );
    let (s, _) = supervisor.call("GET", "/v1/call-lists/999", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Campaigns: validation names the field; unknown lists and duplicate names refused.
    let north = list["id"].as_i64().unwrap();
    let south = south["id"].as_i64().unwrap();
    let (s, p) = admin
        .call(
            "POST",
            "/v1/campaigns",
            Some(json!({"name": "c1", "callerId": "+14155550000", "cps": "fast"})),
        )
        .await;
    assert_eq!(
        (s, p["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("cps")),
        "{p}"
    );
    // In the campaign file's words, not serde's ("expected f64").
    assert_eq!(
        p["detail"],
        "`cps` must be a number of calls per second (e.g. 5 or 0.5), not string \"fast\"",
        "{p}"
    );
    let (_, p) = admin
        .call(
            "POST",
            "/v1/campaigns",
            Some(json!({"name": "c1", "callerId": "+1", "maxConcurrent": "ten"})),
        )
        .await;
    assert_eq!(
        p["detail"], "`maxConcurrent` must be a whole number of calls, not string \"ten\"",
        "{p}"
    );
    let (s, p) = admin
        .call(
            "POST",
            "/v1/campaigns",
            Some(json!({"name": "c1", "callerId": "+14155550000", "maxConcurrent": 0})),
        )
        .await;
    assert_eq!(
        (s, p["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("maxConcurrent")),
        "{p}"
    );
    let (s, p) = admin
        .call(
            "POST",
            "/v1/campaigns",
            Some(json!({"name": "c1", "callerId": "+14155550000", "callLists": [999]})),
        )
        .await;
    assert_eq!(
        (s, p["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("callLists")),
        "{p}"
    );
    let body = json!({
        "name": "c1", "callerId": "+14155550000", "cps": 20, "maxConcurrent": 5,
        "callLists": [north, south],
        "rescheduleRules": [{"disposition": "busy", "retry_after": 1, "max_attempts": 1}]
    });
    let (s, c1) = admin
        .call("POST", "/v1/campaigns", Some(body.clone()))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{c1}");
    assert_eq!(c1["state"], "draft");
    assert_eq!(c1["callerId"], "+14155550000");
    let (s, _) = admin.call("POST", "/v1/campaigns", Some(body)).await;
    assert_eq!(s, StatusCode::CONFLICT, "names are unique");
    let id = c1["id"].as_i64().unwrap();
    let (s, edited) = admin
        .call(
            "PUT",
            &format!("/v1/campaigns/{id}"),
            Some(json!({"name": "c1", "callerId": "+14155550001", "cps": 20, "maxConcurrent": 5, "callLists": [north, south]})),
        )
        .await;
    assert_eq!(
        (s, &edited["callerId"]),
        (StatusCode::OK, &json!("+14155550001")),
        "{edited}"
    );
    let (s, empty) = admin
        .call(
            "POST",
            "/v1/campaigns",
            Some(json!({"name": "empty", "callerId": "+1"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let ctl = |id: i64| format!("/v1/campaigns/{id}/control");
    let (s, p) = supervisor
        .call(
            "PUT",
            &ctl(empty["id"].as_i64().unwrap()),
            Some(json!({"command": "start"})),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "no call list: {p}");
    let (s, _) = supervisor
        .call("PUT", &ctl(id), Some(json!({"command": "pause"})))
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "a draft cannot be paused");
    let (s, p) = supervisor
        .call("PUT", &ctl(id), Some(json!({"command": "jump"})))
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{p}");

    // Start, run to completion against SIPp.
    let (s, st) = supervisor
        .call("PUT", &ctl(id), Some(json!({"command": "start"})))
        .await;
    assert_eq!(
        (s, &st["state"]),
        (StatusCode::OK, &json!("active")),
        "{st}"
    );
    let (s, _) = admin
        .call(
            "PUT",
            &format!("/v1/campaigns/{id}"),
            Some(json!({"name": "c1", "callerId": "+1"})),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::CONFLICT,
        "a running campaign cannot be edited"
    );
    let (s, _) = admin
        .call("DELETE", &format!("/v1/call-lists/{north}"), None)
        .await;
    assert_eq!(
        s,
        StatusCode::CONFLICT,
        "a list being dialled cannot be deleted"
    );
    supervisor
        .until_completed(id, Duration::from_secs(30))
        .await;

    // Calls, one call's timeline, CDRs, statistics.
    let (s, calls) = supervisor
        .call(
            "GET",
            &format!("/v1/calls?campaignId={id}&status=finished"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let calls = calls.as_array().unwrap().clone();
    assert_eq!(calls.len(), 3, "{calls:?}");
    let answered: Vec<&Value> = calls
        .iter()
        .filter(|c| c["disposition"] == "answered")
        .collect();
    assert_eq!(answered.len(), 2);
    let busy = calls.iter().find(|c| c["disposition"] == "busy").unwrap();
    assert_eq!(
        (busy["sipStatus"].as_i64(), busy["q850Cause"].as_i64()),
        (Some(486), Some(17))
    );
    let cid = answered[0]["callId"].as_str().unwrap();
    let (_, call) = supervisor
        .call("GET", &format!("/v1/calls/{cid}"), None)
        .await;
    let kinds: Vec<&str> = call["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.first(), Some(&"initiated"), "{kinds:?}");
    assert!(
        kinds.contains(&"answered") && kinds.contains(&"terminated"),
        "{kinds:?}"
    );
    assert!(call["events"][0]["at"].is_string());
    let (s, _) = supervisor.call("GET", "/v1/calls/nope", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, p) = supervisor
        .call("GET", "/v1/calls?status=sideways", None)
        .await;
    assert_eq!(
        (s, p["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("status"))
    );
    // The disposition filter takes either spelling, and refuses what is not a disposition.
    for spelling in ["busy", "noAnswer", "no_answer"] {
        let (s, v) = supervisor
            .call(
                "GET",
                &format!("/v1/calls?campaignId={id}&disposition={spelling}"),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{spelling}: {v}");
        let expected = usize::from(spelling == "busy");
        assert_eq!(v.as_array().unwrap().len(), expected, "{spelling}: {v}");
    }
    let (s, p) = supervisor
        .call("GET", "/v1/calls?disposition=sideways", None)
        .await;
    assert_eq!(
        (s, p["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("disposition"))
    );
    assert!(p["detail"].as_str().unwrap().contains("no_answer"), "{p}");
    let r = supervisor
        .http
        .get(format!("{}/v1/campaigns/{id}/cdr", supervisor.base))
        .bearer_auth(&supervisor.token)
        .send()
        .await
        .unwrap();
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let cdr = r.text().await.unwrap();
    let lines: Vec<&str> = cdr.lines().collect();
    assert_eq!(lines.len(), 4, "{cdr}");
    assert!(
        lines[0].starts_with("callId,campaignId,leadId,number"),
        "{cdr}"
    );
    let (_, stats) = supervisor
        .call("GET", &format!("/v1/campaigns/{id}/stats"), None)
        .await;
    assert_eq!(stats["state"], "completed");
    // Preview dialling needs a running preview campaign (the flow: tests/acd_sipp.rs); an
    // agent asks for itself only, with a JSON body.
    let (s, p) = agent
        .call("POST", "/v1/agents/1001/next-lead", Some(json!({})))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{p}");
    assert_eq!(
        agent
            .call("POST", "/v1/agents/1002/next-lead", Some(json!({})))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    let (s, p) = agent
        .call(
            "POST",
            "/v1/agents/1001/next-lead",
            Some(json!({"campaign": 1})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
    // The same from the command line: the problem's detail, a failing exit.
    let out = Command::new(BIN)
        .args(["agent", "next-lead", "1001", "--api-url", &agent.base])
        .args(["--token", &agent.token])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("404") && err.contains("preview"),
        "{err}"
    );
    // No pacing rule, so no campaign event (auto-pause: tests/acd_sipp.rs).
    let (s, evs) = supervisor
        .call("GET", &format!("/v1/campaigns/{id}/events"), None)
        .await;
    assert_eq!((s, evs), (StatusCode::OK, json!([])));
    let (s, _) = supervisor
        .call("GET", "/v1/campaigns/999999/events", None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(
        agent
            .call("GET", &format!("/v1/campaigns/{id}/events"), None)
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        (stats["attempts"].as_u64(), stats["answered"].as_u64()),
        (Some(3), Some(2)),
        "{stats}"
    );
    assert!((stats["answerRate"].as_f64().unwrap() - 2.0 / 3.0).abs() < 1e-9);
    assert_eq!(stats["dispositions"]["busy"], 1);
    assert!(stats["pddP50Ms"].as_f64().unwrap() > 0.0, "{stats}");
    let (_, overall) = supervisor.call("GET", "/v1/stats", None).await;
    assert_eq!(overall["attempts"], 3, "{overall}");

    // Prometheus metrics (no token needed): the same counts.
    let m = reqwest::get(format!("{}/metrics", admin.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "outdial_calls_started_total{campaign=\"c1\"} 3",
        "outdial_calls_in_progress{campaign=\"c1\"} 0",
        "outdial_sip_responses_total{campaign=\"c1\",code=\"486\"} 1",
        "outdial_sip_responses_total{campaign=\"c1\",code=\"200\"} 2",
        "outdial_calls_ended_total{campaign=\"c1\",disposition=\"answered\"} 2",
    ] {
        assert!(m.lines().any(|l| l == line), "{line} in\n{m}");
    }

    // Completed: no control but remove, no edit, no delete (its calls are kept).
    let (s, _) = supervisor
        .call("PUT", &ctl(id), Some(json!({"command": "unpause"})))
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (s, _) = admin
        .call("DELETE", &format!("/v1/campaigns/{id}"), None)
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (s, st) = supervisor
        .call("PUT", &ctl(id), Some(json!({"command": "remove"})))
        .await;
    assert_eq!((s, &st["state"]), (StatusCode::OK, &json!("archived")));
    let (s, _) = admin
        .call("DELETE", &format!("/v1/campaigns/{}", empty["id"]), None)
        .await;
    assert_eq!(
        s,
        StatusCode::NO_CONTENT,
        "a draft that never dialled is deleted"
    );
    let (s, _) = admin
        .call("DELETE", &format!("/v1/call-lists/{south}"), None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);

    // Pause holds dialling; unpause resumes; remove stops and archives.
    let slow: Vec<Value> = (10..16).map(|i| json!({"number": number(0, i)})).collect();
    let (_, l2) = admin
        .call(
            "POST",
            "/v1/call-lists",
            Some(json!({"name": "slow", "numbers": slow})),
        )
        .await;
    let (_, c2) = admin
        .call(
            "POST",
            "/v1/campaigns",
            Some(
                json!({"name": "c2", "callerId": "+14155550000", "cps": 1, "maxConcurrent": 1,
                        "callLists": [l2["id"]]}),
            ),
        )
        .await;
    let id2 = c2["id"].as_i64().unwrap();
    let (s, _) = supervisor
        .call("PUT", &ctl(id2), Some(json!({"command": "start"})))
        .await;
    assert_eq!(s, StatusCode::OK);
    // Once its first call is up (a CANCEL crossing SIPp's 200 would leave SIPp deaf to our
    // BYE, and the call would take Timer F's 32 s to end).
    let t0 = Instant::now();
    loop {
        let (_, live) = supervisor
            .call(
                "GET",
                &format!("/v1/calls?campaignId={id2}&status=live"),
                None,
            )
            .await;
        if live
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["answeredAt"].is_string())
        {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "{live}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for (cmd, state) in [
        ("pause", "paused"),
        ("unpause", "active"),
        ("pause", "paused"),
    ] {
        let (s, st) = supervisor
            .call("PUT", &ctl(id2), Some(json!({"command": cmd})))
            .await;
        assert_eq!(
            (s, &st["state"]),
            (StatusCode::OK, &json!(state)),
            "{cmd}: {st}"
        );
    }
    // Paused: edited (not renamed) and reloaded, still paused.
    let edit = |name: &str| {
        json!({"name": name, "callerId": "+14155550099", "cps": 1, "maxConcurrent": 1,
               "callLists": [l2["id"]]})
    };
    let (s, p) = admin
        .call(
            "PUT",
            &format!("/v1/campaigns/{id2}"),
            Some(edit("c2-renamed")),
        )
        .await;
    assert_eq!(
        (s, p["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("name"))
    );
    let (s, e) = admin
        .call("PUT", &format!("/v1/campaigns/{id2}"), Some(edit("c2")))
        .await;
    assert_eq!(
        (s, &e["callerId"]),
        (StatusCode::OK, &json!("+14155550099")),
        "{e}"
    );
    let t0 = Instant::now();
    loop {
        // Refused while the call answered before the pause is still up.
        let (s, st) = supervisor
            .call("PUT", &ctl(id2), Some(json!({"command": "reload"})))
            .await;
        if s == StatusCode::OK {
            assert_eq!(st["state"], "paused");
            break;
        }
        assert_eq!(s, StatusCode::CONFLICT, "{st}");
        assert!(
            st["detail"].as_str().unwrap().contains("in progress"),
            "{st}"
        );
        assert!(t0.elapsed() < Duration::from_secs(10));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, c) = supervisor
        .call("GET", &format!("/v1/campaigns/{id2}"), None)
        .await;
    assert_eq!(
        (&c["state"], &c["callerId"]),
        (&json!("paused"), &json!("+14155550099"))
    );
    let (s, _) = supervisor
        .call("PUT", &ctl(id2), Some(json!({"command": "remove"})))
        .await;
    assert_eq!(s, StatusCode::OK, "a paused campaign can be removed");
    let (s, st) = supervisor
        .call("PUT", &ctl(id2), Some(json!({"command": "reload"})))
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "archived: {st}");
    let (_, calls2) = supervisor
        .call("GET", &format!("/v1/calls?campaignId={id2}"), None)
        .await;
    assert!(
        calls2.as_array().unwrap().len() < 6,
        "paused at once, so not every lead was dialled: {calls2}"
    );

    assert_eq!(server.stop(), Some(0), "SIGTERM: a clean exit");
}

/// What the test's webhook receiver got: (delivery id, signature, body) of each accepted POST.
type Received = std::sync::Arc<std::sync::Mutex<Vec<(String, String, Vec<u8>)>>>;

/// A webhook receiver on 127.0.0.1 that answers 503 until `down_until`, then 200.
async fn receiver(
    down_until: Instant,
) -> (
    String,
    Received,
    std::sync::Arc<std::sync::atomic::AtomicU32>,
) {
    use axum::http::{HeaderMap, StatusCode as S};
    let got: Received = Default::default();
    let refused = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let (g, r) = (got.clone(), refused.clone());
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |h: HeaderMap, body: axum::body::Bytes| {
            let (g, r) = (g.clone(), r.clone());
            async move {
                if Instant::now() < down_until {
                    r.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    return S::SERVICE_UNAVAILABLE;
                }
                let hv = |n: &str| {
                    h.get(n)
                        .map(|v| v.to_str().unwrap().to_string())
                        .unwrap_or_default()
                };
                g.lock().unwrap().push((
                    hv("x-outdial-delivery"),
                    hv("x-outdial-signature"),
                    body.to_vec(),
                ));
                S::OK
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (url, got, refused)
}

/// Reads Server-Sent Events from `resp` until `done` says so (30 s at most): the `data:`
/// payloads as JSON, each with its `id:` added as `sseId`.
async fn read_sse(mut resp: reqwest::Response, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let mut buf = String::new();
    let mut out = Vec::new();
    let t0 = Instant::now();
    while !done(&out) {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "stream ended early: {out:?}"
        );
        let chunk = tokio::time::timeout(Duration::from_secs(30), resp.chunk())
            .await
            .expect("an event within 30 s")
            .unwrap()
            .expect("the stream stays open");
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(i) = buf.find("\n\n") {
            let block: String = buf.drain(..i + 2).collect();
            let mut id = None;
            for line in block.lines() {
                if let Some(i) = line.strip_prefix("id:") {
                    id = i.trim().parse::<u64>().ok();
                }
                if let Some(d) = line.strip_prefix("data:") {
                    let mut v: Value = serde_json::from_str(d.trim()).unwrap();
                    v["sseId"] = json!(id);
                    out.push(v);
                }
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_and_the_live_stream_carry_every_call_event() {
    let far = SippUas::start(OUTCOMES, Transport::Udp, &[]).unwrap();
    let server = Server::start(&far.trunk_uri());
    let admin = server.admin();
    // The receiver is down for the first 1.5 s: the calls are over by then, so their events
    // wait in the webhook's queue and are retried until it comes back.
    let (url, got, refused) = receiver(Instant::now() + Duration::from_millis(1500)).await;
    let secret = "s3cret-0123456789";
    let numbers: Vec<Value> = (0..3)
        .map(|i| json!({"number": number(0, 20 + i)}))
        .collect();
    let (_, list) = admin
        .call(
            "POST",
            "/v1/call-lists",
            Some(json!({"name": "hooks", "numbers": numbers})),
        )
        .await;
    let (s, c) = admin
        .call(
            "POST",
            "/v1/campaigns",
            Some(
                json!({"name": "hooked", "callerId": "+14155550000", "cps": 10,
                "callLists": [list["id"]],
                "webhook": {"url": url, "secret": secret,
                            "events": ["initiated", "ringing", "answered", "completed"]}}),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    assert!(
        c["webhook"].get("secret").is_none(),
        "the secret is never shown: {c}"
    );
    let id = c["id"].as_i64().unwrap();
    // A second campaign whose receiver is gone: its events end as dead letters.
    let dead_port = free_port(Transport::Tcp).unwrap();
    let (_, c2) = admin
        .call(
            "POST",
            "/v1/campaigns",
            Some(json!({"name": "deaf", "callerId": "+14155550000",
                "callLists": [list["id"]],
                "webhook": {"url": format!("http://127.0.0.1:{dead_port}/x"), "secret": secret,
                            "events": ["completed"], "maxAttempts": 2}})),
        )
        .await;
    let (s, p) = admin
        .call(
            "POST",
            "/v1/campaigns",
            Some(json!({"name": "bad-hook", "callerId": "+1",
                "webhook": {"url": url, "secret": "short"}})),
        )
        .await;
    assert_eq!(
        (s, p["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("webhook.secret")),
        "{p}"
    );

    // Watch the stream from before the start.
    let sse = admin
        .http
        .get(format!("{}/v1/events?campaignId={id}", admin.base))
        .bearer_auth(&admin.token)
        .send()
        .await
        .unwrap();
    assert_eq!(sse.status(), StatusCode::OK);
    assert!(
        sse.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    // And over a WebSocket.
    let mut req =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(format!(
            "{}/v1/events/ws?campaignId={id}",
            admin.base.replace("http://", "ws://")
        ))
        .unwrap();
    req.headers_mut().insert(
        "authorization",
        format!("Bearer {}", admin.token).parse().unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let ws_reader = tokio::spawn(async move {
        use futures_util::StreamExt;
        let mut terminated = 0;
        let mut n = 0;
        while terminated < 3 {
            let m = tokio::time::timeout(Duration::from_secs(30), ws.next())
                .await
                .expect("a WebSocket message within 30 s")
                .unwrap()
                .unwrap();
            let v: Value = serde_json::from_str(m.to_text().unwrap()).unwrap();
            assert_eq!(v["type"], "DIALER.CALL_STATUS");
            n += 1;
            if v["payload"]["status"] == "terminated" {
                terminated += 1;
            }
        }
        n
    });
    let ctl = |id: i64| format!("/v1/campaigns/{id}/control");
    for c in [id, c2["id"].as_i64().unwrap()] {
        let (s, _) = admin
            .call("PUT", &ctl(c), Some(json!({"command": "start"})))
            .await;
        assert_eq!(s, StatusCode::OK);
    }
    let events = read_sse(sse, |evs| {
        evs.iter()
            .filter(|e| e["payload"]["status"] == "terminated")
            .count()
            == 3
    })
    .await;
    assert!(
        events
            .iter()
            .all(|e| e["type"] == "DIALER.CALL_STATUS" && e["payload"]["campaignId"] == id)
    );
    // Every event has an id, increasing; a client reconnecting with the id of the last event
    // it saw (`Last-Event-ID`) gets what followed, in order, before the live ones.
    let ids: Vec<u64> = events
        .iter()
        .map(|e| e["sseId"].as_u64().expect("an id: on every event"))
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    let k = 3;
    let resumed = admin
        .http
        .get(format!("{}/v1/events?campaignId={id}", admin.base))
        .bearer_auth(&admin.token)
        .header("Last-Event-ID", ids[k].to_string())
        .send()
        .await
        .unwrap();
    let want = events.len() - k - 1;
    let again = read_sse(resumed, |evs| evs.len() >= want).await;
    for (a, b) in again.iter().zip(&events[k + 1..]) {
        assert_eq!((&a["sseId"], &a["payload"]), (&b["sseId"], &b["payload"]));
    }
    let over_ws = ws_reader.await.unwrap();
    assert!(
        over_ws >= 12,
        "the WebSocket carried the calls' events too: {over_ws}"
    );
    // Each call's whole timeline came live, in the order it is stored.
    let call_ids: std::collections::BTreeSet<String> = events
        .iter()
        .map(|e| e["payload"]["callId"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(call_ids.len(), 3);
    for cid in &call_ids {
        let live: Vec<&str> = events
            .iter()
            .filter(|e| e["payload"]["callId"] == cid.as_str())
            .map(|e| e["payload"]["status"].as_str().unwrap())
            .collect();
        let (_, call) = admin.call("GET", &format!("/v1/calls/{cid}"), None).await;
        let stored: Vec<&str> = call["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["type"].as_str().unwrap())
            .take(live.len())
            .collect();
        assert_eq!(live, stored, "{cid}");
        assert_eq!(live.first(), Some(&"initiated"));
        // Only the RTP statistics follow `terminated`.
        let end = live.iter().position(|s| *s == "terminated").unwrap();
        assert!(
            live[end + 1..].iter().all(|s| *s == "media_stats"),
            "{live:?}"
        );
    }

    // The webhook: every subscribed event once, in order per call, signed; after the
    // receiver came back.
    let t0 = Instant::now();
    while got.lock().unwrap().len() < 12 {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "webhook backlog never arrived: {}",
            got.lock().unwrap().len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = got.lock().unwrap().clone();
    assert_eq!(
        got.len(),
        12,
        "3 calls × initiated, ringing, answered, completed"
    );
    assert!(
        refused.load(std::sync::atomic::Ordering::Relaxed) > 0,
        "the receiver was down at first"
    );
    let mut ids = std::collections::HashSet::new();
    let mut per_call: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for (delivery, sig, body) in &got {
        assert!(ids.insert(delivery.clone()), "delivered once: {delivery}");
        assert_eq!(
            sig,
            &outdial::notify::webhook::signature(secret, body),
            "signed"
        );
        let v: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(v["payload"]["campaignId"], id);
        if v["payload"]["status"] == "completed" {
            // The final event says how long the call talked and whether the lead is done.
            assert!(v["payload"]["durationMs"].is_u64(), "{v}");
            assert_eq!(v["payload"]["leadFinal"], true, "{v}");
        }
        per_call
            .entry(v["payload"]["callId"].as_str().unwrap().to_string())
            .or_default()
            .push(v["payload"]["status"].as_str().unwrap().to_string());
    }
    for (cid, statuses) in &per_call {
        // Subscribed as `completed` (Twilio's name): the final event says so.
        assert_eq!(
            statuses,
            &["initiated", "ringing", "answered", "completed"],
            "{cid}"
        );
    }

    // The deaf campaign's events were dead-lettered with the reason, once it finished.
    let t0 = Instant::now();
    let db = server.dir.path().join("outdial.db");
    let dead = loop {
        let store = outdial::store::Store::open(&db).await.unwrap();
        let d = store
            .dead_letters(c2["id"].as_i64().unwrap())
            .await
            .unwrap();
        if d.len() == 3 {
            break d;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "dead letters: {d:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        dead.iter()
            .all(|(_, body, attempts, _)| *attempts == 2 && body.contains("terminated")),
        "{dead:?}"
    );
    // Every event delivered or dead-lettered: the queues' depth is 0 again, and the deaf
    // hook's failures and dead letters are counted.
    let m = reqwest::get(format!("{}/metrics", admin.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "outdial_webhook_queue_depth{campaign=\"hooked\"} 0",
        "outdial_webhook_queue_depth{campaign=\"deaf\"} 0",
        "outdial_webhook_dead_letters_total{campaign=\"deaf\"} 3",
    ] {
        assert!(m.lines().any(|l| l == line), "{line} in\n{m}");
    }
    assert_eq!(server.stop(), Some(0));
    drop(far);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_calls_finish_and_a_restart_resumes_the_campaign() {
    let far = SippUas::start(OUTCOMES, Transport::Udp, &[]).unwrap();
    let server = Server::start(&far.trunk_uri());
    let admin = server.admin();
    // Two calls at a time, each held 2 s, four leads: SIGTERM while the first two are up.
    let numbers: Vec<Value> = (0..4)
        .map(|i| json!({"number": number(0, 40 + i)}))
        .collect();
    let (_, list) = admin
        .call(
            "POST",
            "/v1/call-lists",
            Some(json!({"name": "l", "numbers": numbers})),
        )
        .await;
    let (_, c) = admin
        .call(
            "POST",
            "/v1/campaigns",
            Some(
                json!({"name": "long", "callerId": "+14155550000", "maxConcurrent": 2,
                        "holdTime": 2.0, "callLists": [list["id"]]}),
            ),
        )
        .await;
    let id = c["id"].as_i64().unwrap();
    admin
        .call(
            "PUT",
            &format!("/v1/campaigns/{id}/control"),
            Some(json!({"command": "start"})),
        )
        .await;
    let t0 = Instant::now();
    loop {
        let (_, live) = admin
            .call(
                "GET",
                &format!("/v1/calls?campaignId={id}&status=live"),
                None,
            )
            .await;
        if live
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["answeredAt"].is_string())
            .count()
            == 2
        {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(15),
            "calls never answered: {live}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (code, dir) = server.stop_keep();
    assert_eq!(code, Some(0));
    // The two calls ended normally (our BYE after the hold time), not cut off; the other two
    // leads were not dialled; the campaign is still active.
    let db = dir.path().join("outdial.db");
    let store = outdial::store::Store::open(&db).await.unwrap();
    let rows: Vec<(Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT disposition, detail FROM attempts WHERE campaign_id = ?1 ORDER BY id",
    )
    .bind(id)
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert_eq!(
        rows,
        vec![(Some("answered".to_string()), Some("hold_time".to_string())); 2],
        "calls in progress finished by themselves"
    );
    let state: String = sqlx::query_scalar("SELECT state FROM campaigns WHERE id = ?1")
        .bind(id)
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(state, "active");
    drop(store);

    // Started again on the same database, the campaign resumes and completes.
    let server = Server::start_in(dir, &far.trunk_uri());
    let admin = Api {
        base: server.base.clone(),
        ..admin
    };
    admin.until_completed(id, Duration::from_secs(20)).await;
    let (_, calls) = admin
        .call("GET", &format!("/v1/calls?campaignId={id}"), None)
        .await;
    assert_eq!(
        calls.as_array().unwrap().len(),
        4,
        "each lead dialled once: {calls}"
    );
    assert_eq!(server.stop(), Some(0));
    drop(far);
}

/// Creates one campaign per body (each with a call list of four answered numbers from
/// `serial`, ten apart), starts them all, and waits (30 s in all) until every one completed.
async fn run_campaigns(admin: &Api, serial: u32, bodies: Vec<Value>) -> Vec<i64> {
    let mut ids = Vec::new();
    for (c, mut body) in bodies.into_iter().enumerate() {
        let numbers: Vec<Value> = (0..4)
            .map(|i| json!({"number": number(0, serial + 10 * c as u32 + i)}))
            .collect();
        let (_, l) = admin
            .call(
                "POST",
                "/v1/call-lists",
                Some(json!({"name": format!("l{serial}-{c}"), "numbers": numbers})),
            )
            .await;
        body["callLists"] = json!([l["id"]]);
        let (s, camp) = admin.call("POST", "/v1/campaigns", Some(body)).await;
        assert_eq!(s, StatusCode::CREATED, "{camp}");
        ids.push(camp["id"].as_i64().unwrap());
    }
    for id in &ids {
        let (s, _) = admin
            .call(
                "PUT",
                &format!("/v1/campaigns/{id}/control"),
                Some(json!({"command": "start"})),
            )
            .await;
        assert_eq!(s, StatusCode::OK);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    for id in &ids {
        admin
            .until_completed(*id, deadline.saturating_duration_since(Instant::now()))
            .await;
    }
    ids
}

/// A campaign body allowing five calls at once at 20 calls/s.
fn five_at_once(name: &str) -> Value {
    json!({"name": name, "callerId": "+14155550000", "cps": 20, "maxConcurrent": 5})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn campaigns_share_the_services_limits() {
    let far = SippUas::start(OUTCOMES, Transport::Udp, &[]).unwrap();
    // One call at a time across every campaign, though each allows five.
    let server = Server::start_with(
        tempfile::tempdir().unwrap(),
        &far.trunk_uri(),
        "max_concurrent = 1",
    );
    let admin = server.admin();
    run_campaigns(
        &admin,
        60,
        vec![five_at_once("shared-0"), five_at_once("shared-1")],
    )
    .await;
    let (code, dir) = server.stop_keep();
    assert_eq!(code, Some(0));
    let (attempts, peak) = common::peak_concurrency(&dir.path().join("outdial.db")).await;
    assert_eq!(attempts, 8);
    assert_eq!(peak, 1, "never two calls at once across the campaigns");
    drop(far);
}

/// `[[trunk_limits]]`: two campaigns on one trunk limited to one call at a time never overlap,
/// while a third campaign on another trunk keeps its own concurrency.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn campaigns_on_one_trunk_share_its_limits() {
    let far = SippUas::start(OUTCOMES, Transport::Udp, &[]).unwrap();
    let other = SippUas::start(OUTCOMES, Transport::Udp, &[]).unwrap();
    let server = Server::start_with(
        tempfile::tempdir().unwrap(),
        &far.trunk_uri(),
        &format!(
            "trunk_limits = [{{ trunk = \"{}\", max_concurrent = 1, cps = 50 }}]",
            far.trunk_uri()
        ),
    );
    let admin = server.admin();
    let mut elsewhere = five_at_once("trunk-2");
    elsewhere["trunk"] = json!(other.trunk_uri());
    let ids = run_campaigns(
        &admin,
        160,
        vec![five_at_once("trunk-0"), five_at_once("trunk-1"), elsewhere],
    )
    .await;
    let (code, dir) = server.stop_keep();
    assert_eq!(code, Some(0));
    let db = dir.path().join("outdial.db");
    let (n, peak) = common::peak_concurrency_of(&db, Some(&ids[..2])).await;
    assert_eq!(
        (n, peak),
        (8, 1),
        "the limited trunk: one call at a time for both"
    );
    let (n, peak) = common::peak_concurrency_of(&db, Some(&ids[2..])).await;
    assert_eq!(n, 4);
    assert!(peak > 1, "the other trunk is not limited: peak {peak}");
    drop((far, other));
}

/// Scheduled campaigns (`startAt`, `stopAt`, holidays) on a real `outdial serve` and a SIPp
/// far end: a campaign started with its `startAt` 4 s ahead is `scheduled`, keeps that over a
/// restart of `serve`, and dials by itself — no call before its `startAt`; one whose `stopAt`
/// passes stops dialling, ends `completed` with a `schedule_ended` event and leads left; a
/// campaign whose calling window has today as a holiday places no call; `start` after the
/// `stopAt` is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_campaigns_start_and_stop_by_themselves_across_a_restart() {
    let far = SippUas::start(OUTCOMES, Transport::Udp, &[]).unwrap();
    let server = Server::start(&far.trunk_uri());
    let token = server.token("admin", None);
    let api = |s: &Server| Api {
        http: reqwest::Client::new(),
        base: s.base.clone(),
        token: token.clone(),
    };
    let admin = api(&server);
    let rfc3339 =
        |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let mut serial = 600;
    let mut list = |n: u32| {
        let numbers: Vec<Value> = (0..n)
            .map(|_| {
                serial += 1;
                json!({"number": number(0, serial)})
            })
            .collect();
        json!({"name": format!("l{serial}"), "numbers": numbers})
    };
    let mut campaign = async |admin: &Api, body: Value, n: u32| -> i64 {
        let (s, l) = admin.call("POST", "/v1/call-lists", Some(list(n))).await;
        assert_eq!(s, StatusCode::CREATED, "{l}");
        let mut body = body;
        body["callerId"] = json!("+14155550000");
        body["callLists"] = json!([l["id"]]);
        let (s, c) = admin.call("POST", "/v1/campaigns", Some(body)).await;
        assert_eq!(s, StatusCode::CREATED, "{c}");
        c["id"].as_i64().unwrap()
    };
    let control = async |admin: &Api, id: i64, command: &str| {
        admin
            .call(
                "PUT",
                &format!("/v1/campaigns/{id}/control"),
                Some(json!({ "command": command })),
            )
            .await
    };
    let now = chrono::Utc::now();
    let start_at = now + chrono::Duration::seconds(4);
    let sched = campaign(
        &admin,
        json!({"name": "sched", "startAt": rfc3339(start_at), "maxConcurrent": 1}),
        2,
    )
    .await;
    let (s, c) = control(&admin, sched, "start").await;
    assert_eq!(
        (s, &c["state"]),
        (StatusCode::OK, &json!("scheduled")),
        "{c}"
    );
    let (s, c) = control(&admin, sched, "pause").await;
    assert_eq!(s, StatusCode::CONFLICT, "{c}");
    assert!(
        c["detail"].as_str().unwrap().contains("has not started"),
        "{c}"
    );
    // A bad startAt is refused with its field.
    let (s, p) = admin
        .call(
            "POST",
            "/v1/campaigns",
            Some(json!({"name": "bad", "callerId": "+14155550000", "startAt": "9am"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
    assert!(p["detail"].as_str().unwrap().contains("RFC 3339"), "{p}");

    // Restart: still scheduled, nothing dialled.
    let (code, dir) = server.stop_keep();
    assert_eq!(code, Some(0));
    let server = Server::start_in(dir, &far.trunk_uri());
    let admin = api(&server);
    let (_, c) = admin
        .call("GET", &format!("/v1/campaigns/{sched}"), None)
        .await;
    let (_, calls) = admin
        .call("GET", &format!("/v1/calls?campaignId={sched}"), None)
        .await;
    if chrono::Utc::now() < start_at {
        assert_eq!(c["state"], "scheduled", "{c}");
        assert_eq!(calls, json!([]), "dialled before its startAt");
    }
    // Meanwhile: a campaign whose stopAt comes in 3 s, and one on a holiday.
    let stop_at = chrono::Utc::now() + chrono::Duration::seconds(3);
    let ends = campaign(
        &admin,
        json!({"name": "ends", "stopAt": rfc3339(stop_at), "cps": 1, "maxConcurrent": 1}),
        30,
    )
    .await;
    let today = chrono::Utc::now().date_naive();
    let holiday = campaign(
        &admin,
        json!({"name": "holiday", "stopAt": rfc3339(stop_at),
               "activePeriod": {"startTime": "00:00", "endTime": "23:59",
                   "weekDays": [1, 2, 3, 4, 5, 6, 7], "timeZone": "UTC",
                   "holidays": [today.to_string(), today.succ_opt().unwrap().to_string()]}}),
        2,
    )
    .await;
    for id in [ends, holiday] {
        let (s, c) = control(&admin, id, "start").await;
        assert_eq!((s, &c["state"]), (StatusCode::OK, &json!("active")), "{c}");
    }
    for id in [sched, ends, holiday] {
        admin.until_completed(id, Duration::from_secs(30)).await;
    }
    // `sched`: both leads called, none before startAt.
    let (_, calls) = admin
        .call("GET", &format!("/v1/calls?campaignId={sched}"), None)
        .await;
    let calls = calls.as_array().unwrap();
    assert_eq!(calls.len(), 2, "{calls:?}");
    for c in calls {
        let started = chrono::DateTime::parse_from_rfc3339(c["startedAt"].as_str().unwrap())
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert!(
            started >= start_at,
            "called at {started}, startAt {start_at}"
        );
        assert_eq!(c["disposition"], "answered", "{c}");
    }
    // `ends`: some calls, none after stopAt, the rest of its leads left; its event.
    let (_, calls) = admin
        .call("GET", &format!("/v1/calls?campaignId={ends}"), None)
        .await;
    let calls = calls.as_array().unwrap();
    assert!(!calls.is_empty() && calls.len() < 30, "{}", calls.len());
    for c in calls {
        let started = chrono::DateTime::parse_from_rfc3339(c["startedAt"].as_str().unwrap())
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert!(started < stop_at, "called at {started}, stopAt {stop_at}");
    }
    let (_, evs) = admin
        .call("GET", &format!("/v1/campaigns/{ends}/events"), None)
        .await;
    assert_eq!(evs[0]["type"], "schedule_ended", "{evs}");
    // Leads not final at stopAt: those never called, and a call still going then (if any).
    let left = evs[0]["leads_left"].as_u64().unwrap();
    let never_called = 30 - calls.len() as u64;
    assert!(
        left == never_called || left == never_called + 1,
        "{left} left, {never_called} never called: {evs}"
    );
    // `holiday`: no call at all.
    let (_, calls) = admin
        .call("GET", &format!("/v1/calls?campaignId={holiday}"), None)
        .await;
    assert_eq!(calls, json!([]));
    // Past its stopAt, a campaign cannot start.
    let late = campaign(
        &admin,
        json!({"name": "late", "stopAt": rfc3339(chrono::Utc::now() - chrono::Duration::seconds(1))}),
        1,
    )
    .await;
    let (s, c) = control(&admin, late, "start").await;
    assert_eq!(s, StatusCode::CONFLICT, "{c}");
    assert!(c["detail"].as_str().unwrap().contains("stop_at"), "{c}");
    assert_eq!(server.stop(), Some(0));
}

/// IVR applications kept by name (`/v1/ivr`): created and replaced in camelCase, validated
/// with the campaign file's messages, copied into a campaign that names one (`ivrApp`), and
/// deleted without touching that copy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ivr_applications_are_kept_by_name_and_copied_into_campaigns() {
    let server = Server::start("sip:127.0.0.1:9");
    let admin = server.admin();
    let agent = admin.as_role(&server.token("agent", Some("1001")));
    let menu = json!({"nodes": {"main": {"prompt": "/p/menu.wav", "retryPrompt": "/p/sorry.wav",
        "choices": {"9": {"action": "dnc"}, "2": {"action": "record", "maxSeconds": 30}}}}});
    let (s, v) = admin.call("PUT", "/v1/ivr/menu", Some(menu.clone())).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["name"], "menu");
    assert_eq!(v["nodes"]["main"]["retryPrompt"], "/p/sorry.wav");
    assert_eq!(v["nodes"]["main"]["choices"]["2"]["maxSeconds"], 30);
    let (s, _) = admin.call("PUT", "/v1/ivr/menu", Some(menu)).await;
    assert_eq!(s, StatusCode::OK, "replaced");
    let (s, p) = admin
        .call(
            "PUT",
            "/v1/ivr/bad",
            Some(json!({"nodes": {"main": {"choices": {"1": {"action": "goto", "node": "nowhere"}}}}})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
    assert!(
        p["detail"].as_str().unwrap().contains("goto \"nowhere\""),
        "{p}"
    );
    let (s, p) = admin
        .call(
            "PUT",
            "/v1/ivr/bad",
            Some(json!({"nodes": {"main": {"timeOut": 3}}})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
    let (_, list) = admin.call("GET", "/v1/ivr", None).await;
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(
        agent.call("GET", "/v1/ivr", None).await.0,
        StatusCode::FORBIDDEN
    );
    let (s, c) = admin
        .call(
            "POST",
            "/v1/campaigns",
            Some(json!({"name": "renewals", "callerId": "+14155550000", "onHuman": "ivr", "ivrApp": "menu"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    assert_eq!(
        c["ivr"]["nodes"]["main"]["retryPrompt"], "/p/sorry.wav",
        "{c}"
    );
    let (s, p) = admin
        .call(
            "POST",
            "/v1/campaigns",
            Some(json!({"name": "other", "callerId": "+14155550000", "onHuman": "ivr", "ivrApp": "nope"})),
        )
        .await;
    assert_eq!(
        (s, &p["field"]),
        (StatusCode::UNPROCESSABLE_ENTITY, &json!("ivrApp")),
        "{p}"
    );
    assert_eq!(
        admin.call("DELETE", "/v1/ivr/menu", None).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        admin.call("GET", "/v1/ivr/menu", None).await.0,
        StatusCode::NOT_FOUND
    );
    let (_, c) = admin
        .call("GET", &format!("/v1/campaigns/{}", c["id"]), None)
        .await;
    assert_eq!(
        c["ivr"]["nodes"]["main"]["prompt"], "/p/menu.wav",
        "the campaign keeps its copy"
    );
    assert_eq!(server.stop(), Some(0));
}

/// The do-not-call list over the API: listed a page at a time, and a number taken off it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dnc_list_is_listed_and_a_number_deleted() {
    let server = Server::start("sip:127.0.0.1:9");
    let admin = server.admin();
    let (s, v) = admin
        .call(
            "POST",
            "/v1/dnc",
            Some(json!({"numbers": ["+14155550601", "4155550602", "+14155550603"]})),
        )
        .await;
    assert_eq!((s, &v["added"]), (StatusCode::OK, &json!(3)), "{v}");
    let (_, page) = admin.call("GET", "/v1/dnc?limit=2", None).await;
    assert_eq!(page["numbers"].as_array().unwrap().len(), 2, "{page}");
    assert_eq!(page["numbers"][0]["source"], "api");
    let next = page["next"].as_str().unwrap().to_string();
    let (_, rest) = admin
        .call(
            "GET",
            &format!("/v1/dnc?limit=2&after={}", next.replace('+', "%2B")),
            None,
        )
        .await;
    assert_eq!(rest["numbers"].as_array().unwrap().len(), 1, "{rest}");
    assert_eq!(rest["next"], Value::Null);
    let (s, _) = admin.call("DELETE", "/v1/dnc/+14155550603", None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (_, v) = admin.call("GET", "/v1/dnc/+14155550603", None).await;
    assert_eq!(v["listed"], false);
    assert_eq!(
        admin.call("DELETE", "/v1/dnc/+14155550603", None).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        admin.call("GET", "/v1/dnc?limit=0", None).await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(server.stop(), Some(0));
}

/// Recycling a finished campaign: the leads that ended with the chosen dispositions are
/// dialled again (attempts kept on record), the others stay final.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_completed_campaign_recycles_the_leads_of_chosen_dispositions() {
    let far = SippUas::start(OUTCOMES, Transport::Udp, &[]).unwrap();
    let server = Server::start(&far.trunk_uri());
    let admin = server.admin();
    // Two busy lines (2) and one answer (0).
    let numbers =
        json!([{"number": number(2, 81)}, {"number": number(2, 82)}, {"number": number(0, 83)}]);
    let (_, list) = admin
        .call(
            "POST",
            "/v1/call-lists",
            Some(json!({"name": "r", "numbers": numbers})),
        )
        .await;
    let (_, c) = admin
        .call(
            "POST",
            "/v1/campaigns",
            Some(
                json!({"name": "recycled", "callerId": "+14155550000", "callLists": [list["id"]]}),
            ),
        )
        .await;
    let id = c["id"].as_i64().unwrap();
    let control = async |body: Value| {
        admin
            .call("PUT", &format!("/v1/campaigns/{id}/control"), Some(body))
            .await
    };
    assert_eq!(control(json!({"command": "start"})).await.0, StatusCode::OK);
    // (Recycling an active campaign is refused: the lifecycle's unit test.)
    admin.until_completed(id, Duration::from_secs(20)).await;
    let (s, p) = control(json!({"command": "recycle"})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
    let (s, p) = control(json!({"command": "recycle", "dispositions": ["nobody"]})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
    let (s, p) = control(json!({"command": "recycle", "dispositions": ["rejected"]})).await;
    assert_eq!(s, StatusCode::CONFLICT, "nothing to recycle: {p}");
    let (s, p) = control(json!({"command": "recycle", "dispositions": ["busy"]})).await;
    assert_eq!((s, &p["state"]), (StatusCode::OK, &json!("paused")), "{p}");
    assert_eq!(
        control(json!({"command": "unpause"})).await.0,
        StatusCode::OK
    );
    admin.until_completed(id, Duration::from_secs(20)).await;
    let (_, calls) = admin
        .call("GET", &format!("/v1/calls?campaignId={id}"), None)
        .await;
    let mut per_number: std::collections::BTreeMap<String, usize> = Default::default();
    for c in calls.as_array().unwrap() {
        *per_number
            .entry(c["number"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    assert_eq!(per_number[&number(2, 81)], 2, "{per_number:?}");
    assert_eq!(per_number[&number(2, 82)], 2, "{per_number:?}");
    assert_eq!(per_number[&number(0, 83)], 1, "{per_number:?}");
    assert_eq!(server.stop(), Some(0));
}

/// A call list read back a page at a time, appended to, a number's attributes edited and a
/// number removed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_list_is_read_back_appended_and_edited() {
    let server = Server::start("sip:127.0.0.1:9");
    let admin = server.admin();
    let (_, list) = admin
        .call(
            "POST",
            "/v1/call-lists",
            Some(json!({"name": "l", "numbers": [
                {"number": "+14155550701", "attributes": {"name": "Ann"}},
                {"number": "+14155550702"}]})),
        )
        .await;
    let id = list["id"].as_i64().unwrap();
    let (s, v) = admin
        .call(
            "POST",
            &format!("/v1/call-lists/{id}/numbers"),
            Some(json!({"defaultRegion": "US", "numbers": [
                {"number": "(415) 555-0703", "attributes": {"name": "Bo", "vip": true}},
                {"number": "+14155550701"},
                {"number": "12"}]})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        (&v["added"], &v["alreadyPresent"]),
        (&json!(1), &json!(1)),
        "{v}"
    );
    assert_eq!(v["errors"][0]["index"], 2, "{v}");
    let (_, page) = admin
        .call("GET", &format!("/v1/call-lists/{id}/numbers?limit=2"), None)
        .await;
    let nums = page["numbers"].as_array().unwrap();
    assert_eq!(nums.len(), 2);
    assert_eq!(nums[0]["attributes"]["name"], "Ann");
    let (_, rest) = admin
        .call(
            "GET",
            &format!("/v1/call-lists/{id}/numbers?after={}", page["next"]),
            None,
        )
        .await;
    let last = &rest["numbers"][0];
    assert_eq!(last["number"], "+14155550703");
    assert_eq!(last["rawNumber"], "(415) 555-0703");
    assert_eq!(last["attributes"]["vip"], "true");
    let (s, _) = admin
        .call(
            "PUT",
            &format!("/v1/call-lists/{id}/numbers/+14155550702"),
            Some(json!({"attributes": {"name": "Cy"}})),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = admin
        .call(
            "DELETE",
            &format!("/v1/call-lists/{id}/numbers/+14155550701"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (_, all) = admin
        .call("GET", &format!("/v1/call-lists/{id}/numbers"), None)
        .await;
    let all = all["numbers"].as_array().unwrap();
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!(all[0]["attributes"]["name"], "Cy");
    assert_eq!(
        admin
            .call(
                "DELETE",
                &format!("/v1/call-lists/{id}/numbers/+14155550701"),
                None
            )
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        admin
            .call("GET", "/v1/call-lists/999/numbers", None)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let (_, info) = admin
        .call("GET", &format!("/v1/call-lists/{id}"), None)
        .await;
    assert_eq!(info["numbersCount"], 2, "{info}");
    assert_eq!(server.stop(), Some(0));
}

/// One call on demand (`POST /v1/calls`), as a CPaaS API places one: a campaign of one whose
/// call id comes back and whose call is answered by the SIPp far end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_call_is_placed_on_demand() {
    let far = SippUas::start(OUTCOMES, Transport::Udp, &[]).unwrap();
    let server = Server::start(&far.trunk_uri());
    let admin = server.admin();
    let (s, p) = admin
        .call(
            "POST",
            "/v1/calls",
            Some(json!({"callerId": "+14155550000"})),
        )
        .await;
    assert_eq!(
        (s, &p["field"]),
        (StatusCode::UNPROCESSABLE_ENTITY, &json!("to")),
        "{p}"
    );
    let (s, p) = admin
        .call(
            "POST",
            "/v1/calls",
            Some(json!({"to": number(0, 91), "callerId": "+14155550000", "name": "mine"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
    let (s, v) = admin
        .call(
            "POST",
            "/v1/calls",
            Some(json!({"to": number(0, 92), "callerId": "+14155550000", "holdTime": 0.3})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["number"], number(0, 92).as_str());
    let call_id = v["callId"].as_str().expect("the call's id").to_string();
    admin
        .until_completed(v["campaignId"].as_i64().unwrap(), Duration::from_secs(20))
        .await;
    let (_, call) = admin
        .call("GET", &format!("/v1/calls/{call_id}"), None)
        .await;
    assert_eq!(call["disposition"], "answered", "{call}");
    assert_eq!(server.stop(), Some(0));
}
