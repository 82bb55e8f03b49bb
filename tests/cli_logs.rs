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
