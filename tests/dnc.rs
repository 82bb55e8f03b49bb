//! The do-not-call list as a campaign matches it: a national number on the list stops the
//! E.164 lead of a campaign in that region (the list stores numbers as given).

mod common;

use common::*;
use outdial::store::Store;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_national_number_on_the_list_stops_the_e164_lead_of_the_campaigns_region() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("outdial.db");
    let store = Store::open(&db).await.unwrap();
    // Added without a region: kept as given.
    store
        .import_dnc(&["4155550601".to_string()], "test")
        .await
        .unwrap();
    drop(store);
    // No call is placed (the only lead is on the list), so the trunk is never reached.
    let toml = campaign_toml(
        "dnc-region",
        "sip:127.0.0.1:9",
        "default_region = \"US\"\n[amd]\nprofile = \"off\"",
    );
    let numbers = ["(415) 555-0601".to_string()];
    // Bounded: were the lead dialled, the closed port would hold the campaign (trunk down).
    let (out, _) = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        run_campaign(dir.path(), &toml, &numbers),
    )
    .await
    .expect("the lead is made final at once, not dialled");
    let l = &out.report.leads[0];
    assert_eq!(l.number, "+14155550601");
    assert_eq!(l.final_disposition.as_deref(), Some("dnc"), "{l:?}");
    assert!(l.attempts.is_empty(), "never dialled");
}
