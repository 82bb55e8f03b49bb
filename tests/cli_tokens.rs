//! `outdial token …` as an operator runs it: the store comes from `--db` or the service file
//! (never a database created where nobody asked), and tokens are listed and revoked.

use std::process::{Command, Output};

fn outdial(dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_outdial"))
        .args(args)
        .current_dir(dir)
        .env_remove("OUTDIAL_DB")
        .output()
        .expect("outdial runs")
}

#[test]
fn tokens_are_made_in_the_services_store_listed_and_revoked() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Neither --db nor a service file: refused, and no ./outdial.db appears.
    let out = outdial(d, &["token", "create", "--role", "admin"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("which store?"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!d.join("outdial.db").exists());
    // The service file's store.
    let db = d.join("service.db");
    std::fs::write(d.join("svc.toml"), format!("db = \"{}\"\n", db.display())).unwrap();
    let out = outdial(
        d,
        &[
            "token",
            "create",
            "--role",
            "supervisor",
            "--name",
            "alice",
            "--config",
            "svc.toml",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(token.starts_with("odt_"), "{token}");
    assert!(db.exists() && !d.join("outdial.db").exists());
    // ./outdial.toml is read when present.
    std::fs::copy(d.join("svc.toml"), d.join("outdial.toml")).unwrap();
    assert!(
        outdial(d, &["token", "create", "--role", "admin"])
            .status
            .success()
    );
    let list = outdial(d, &["token", "list"]);
    let text = String::from_utf8(list.stdout).unwrap();
    assert!(
        text.contains("alice") && text.contains("supervisor"),
        "{text}"
    );
    assert!(!text.contains(&token), "the token itself is never listed");
    assert_eq!(text.lines().count(), 3, "{text}");
    // Revoked: listed as such, no longer accepted, and not revoked twice.
    assert!(outdial(d, &["token", "revoke", "1"]).status.success());
    let text = String::from_utf8(outdial(d, &["token", "list"]).stdout).unwrap();
    let alice = text.lines().find(|l| l.contains("alice")).unwrap();
    assert!(
        !alice.trim_end().ends_with('-'),
        "revoked time shown: {alice}"
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let store = rt.block_on(outdial::store::Store::open(&db)).unwrap();
    assert_eq!(rt.block_on(store.token_role(&token)).unwrap(), None);
    let again = outdial(d, &["token", "revoke", "1"]);
    assert!(!again.status.success());
}
