//! Log output of the `outdial` binary as a log collector sees it: standard error piped (not
//! a terminal), plain text without ANSI colour codes, or one JSON object per line with
//! `--log-format json`.

use std::process::Command;

/// Runs `outdial <args>` with `OUTDIAL_LOG=debug` (a command that stops at once: a report
/// from a store that does not exist) and returns its standard error.
fn stderr_of(args: &[&str], env: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("none.db");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_outdial"));
    cmd.args(args)
        .args(["report", "--db", db.to_str().unwrap(), "--campaign", "x"])
        .env("OUTDIAL_LOG", "debug")
        .env_remove("OUTDIAL_LOG_FORMAT");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("outdial runs");
    assert!(!out.status.success(), "no such store: an error exit");
    String::from_utf8(out.stderr).expect("UTF-8 logs")
}

#[test]
fn text_logs_to_a_pipe_carry_no_colour_codes() {
    let err = stderr_of(&[], &[]);
    let line = err
        .lines()
        .find(|l| l.contains("outdial starting"))
        .unwrap_or_else(|| panic!("the debug line: {err}"));
    assert!(line.contains("DEBUG"), "{line}");
    assert!(
        !err.contains('\u{1b}'),
        "ANSI escape in piped logs: {err:?}"
    );
}

#[test]
fn json_logs_are_one_object_per_line() {
    for (args, env) in [
        (vec!["--log-format", "json"], vec![]),
        (vec![], vec![("OUTDIAL_LOG_FORMAT", "json")]),
    ] {
        let err = stderr_of(&args, &env);
        let line = err
            .lines()
            .find(|l| l.contains("outdial starting"))
            .unwrap_or_else(|| panic!("the debug line: {err}"));
        let v: serde_json::Value = serde_json::from_str(line).expect("a JSON object");
        assert_eq!(v["level"], "DEBUG");
        assert_eq!(v["fields"]["message"], "outdial starting");
        assert!(v["timestamp"].is_string());
        assert!(!err.contains('\u{1b}'));
        // The command's own error stays a plain line for the person at the terminal.
        assert!(err.contains("error: no database"), "{err}");
    }
}

#[test]
fn an_unknown_log_format_is_refused_with_the_choices() {
    let out = Command::new(env!("CARGO_BIN_EXE_outdial"))
        .args(["--log-format", "xml", "report", "--campaign", "x"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("text") && err.contains("json"), "{err}");
}

#[test]
fn a_call_list_with_only_a_header_is_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let campaign = dir.path().join("c.toml");
    let leads = dir.path().join("leads.csv");
    // Port 9 (discard) on loopback: the campaign has nothing to dial, so nothing is sent.
    std::fs::write(
        &campaign,
        "name = \"h\"\ntrunk = \"sip:127.0.0.1:9\"\ncaller_id = \"+14155550000\"\n\
         local_address = \"127.0.0.1:0\"\n",
    )
    .unwrap();
    std::fs::write(&leads, "number,name\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_outdial"))
        .arg("run")
        .arg(&campaign)
        .arg("--leads")
        .arg(&leads)
        .arg("--db")
        .arg(dir.path().join("o.db"))
        .arg("--quiet")
        .env_remove("OUTDIAL_LOG")
        .output()
        .expect("outdial runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("the call list has a header and no rows"),
        "{err}"
    );
    assert!(out.status.success(), "an empty list is not an error: {err}");
    // A list whose only row is rejected: that row's error is the warning, not this one.
    std::fs::write(&leads, "number\nnot-a-number\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_outdial"))
        .args(["run"])
        .arg(&campaign)
        .arg("--leads")
        .arg(&leads)
        .arg("--db")
        .arg(dir.path().join("o2.db"))
        .arg("--quiet")
        .env_remove("OUTDIAL_LOG")
        .output()
        .expect("outdial runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("call list row rejected"), "{err}");
    assert!(!err.contains("no rows"), "{err}");
}
