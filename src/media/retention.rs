//! The retention period of call recordings (`recording_retention_days`): a campaign's run
//! deletes its recordings directory's call recordings (`*-call.wav`) older than that, at
//! start and every hour while it runs.

use std::path::Path;
use std::time::{Duration, SystemTime};

/// How often a running campaign sweeps its recordings.
pub const SWEEP_EVERY: Duration = Duration::from_secs(3600);

/// Deletes the call recordings (`*-call.wav`) in `dir` last modified more than `days` days
/// before `now`; returns how many. A missing directory is nothing to sweep; files that
/// cannot be read or deleted are logged and left.
pub fn sweep(dir: &Path, days: u32, now: SystemTime) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let keep = Duration::from_secs(u64::from(days) * 86_400);
    let mut deleted = 0;
    for e in entries.flatten() {
        let path = e.path();
        let is_call = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.ends_with("-call.wav"));
        if !is_call {
            continue;
        }
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .map(|t| now.duration_since(t).unwrap_or_default() > keep);
        match old {
            Ok(true) => match std::fs::remove_file(&path) {
                Ok(()) => deleted += 1,
                Err(err) => {
                    tracing::warn!(file = %path.display(), error = %err, "recording not deleted")
                }
            },
            Ok(false) => {}
            Err(err) => {
                tracing::warn!(file = %path.display(), error = %err, "recording unreadable")
            }
        }
    }
    if deleted > 0 {
        tracing::info!(dir = %dir.display(), deleted, days, "call recordings past retention deleted");
    }
    deleted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_call_recordings_past_retention_go() {
        let dir = tempfile::tempdir().unwrap();
        let now = SystemTime::now();
        let make = |name: &str, age_days: u64| {
            let p = dir.path().join(name);
            let f = std::fs::File::create(&p).unwrap();
            f.set_modified(now - Duration::from_secs(age_days * 86_400 + 60))
                .unwrap();
            p
        };
        let old = make("a-call.wav", 31);
        let young = make("b-call.wav", 29);
        let ivr = make("c.wav", 90);
        assert_eq!(sweep(dir.path(), 30, now), 1);
        assert!(!old.exists());
        assert!(
            young.exists() && ivr.exists(),
            "IVR recordings are not call recordings"
        );
        assert_eq!(sweep(&dir.path().join("missing"), 30, now), 0);
    }
}
