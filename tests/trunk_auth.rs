//! Digest authentication towards the trunk against a SIPp far end that challenges every
//! INVITE (401 or 407) and verifies the answer: right credentials get the call answered with
//! CSeq 2 on the authenticated INVITE, wrong ones end as the trunk's 403, none as its 401.

mod common;

use common::*;
use outdial::demo::SippUas;
use outdial::sip::message::Transport;
use outdial::store::Store;

const SCENARIO: &str = include_str!("../sip-fixtures/scenarios/uas_auth.xml");

async fn call(code: &str, header: &str, creds: Option<(&str, &str)>) -> (String, Option<u16>) {
    let mut scenario = SCENARIO.replace("@CODE@", code).replace("@HEADER@", header);
    if code.starts_with("407") {
        scenario = scenario.replace(
            r#"<verifyauth assign_to="authvalid" username="alice" password="s3cret"/>"#,
            r#"<ereg regexp="Digest username=.alice.*response=" search_in="hdr" header="Proxy-Authorization:" check_it="false" assign_to="authvalid"/>"#,
        );
    }
    let uas = SippUas::start(&scenario, Transport::Udp, &[]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let auth = match creds {
        Some((u, p)) => format!("auth_username = \"{u}\"\nauth_password = \"{p}\""),
        None => String::new(),
    };
    let toml = campaign_toml(
        "auth",
        &uas.trunk_uri(),
        &format!("hold_time = 0.5\n{auth}\n[amd]\nprofile = \"off\""),
    );
    let (out, db) = run_campaign(dir.path(), &toml, &[number(0, 1)]).await;
    let a = only_attempt(&out.report.leads[0]).clone();
    // The password never reaches the store.
    let store = Store::open(&db).await.unwrap();
    let config: String = sqlx::query_scalar("SELECT config FROM campaigns")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert!(
        !config.contains("s3cret") && !config.contains("wrong"),
        "{config}"
    );
    (a.disposition.unwrap(), a.sip_status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digest_challenges_are_answered() {
    let (ok401, ok407, wrong, none) = tokio::join!(
        call(
            "401 Unauthorized",
            "WWW-Authenticate",
            Some(("alice", "s3cret"))
        ),
        call(
            "407 Proxy Authentication Required",
            "Proxy-Authenticate",
            Some(("alice", "s3cret"))
        ),
        call(
            "401 Unauthorized",
            "WWW-Authenticate",
            Some(("alice", "wrong"))
        ),
        call("401 Unauthorized", "WWW-Authenticate", None),
    );
    assert_eq!(ok401, ("answered".to_string(), Some(200)));
    assert_eq!(ok407, ("answered".to_string(), Some(200)));
    assert_eq!(wrong, ("rejected".to_string(), Some(403)));
    assert_eq!(none, ("failed".to_string(), Some(401)));
}
