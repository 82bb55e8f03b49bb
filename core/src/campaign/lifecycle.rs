//! The campaign lifecycle as a closed vocabulary:
//!
//! ```text
//! draft ─start→ active ─pause→ paused ─unpause→ active … → completed (every lead final,
//!                                                               or stop_at passed)
//! draft ─start→ scheduled (start_at ahead) ─start_at→ active
//! paused ─reload→ paused (stored settings applied)
//! completed|paused ─recycle→ paused (leads of chosen dispositions dialled again)
//! draft|scheduled|paused|completed ─remove→ archived
//! ```
//! States and commands parse from and print as their lowercase names (the stored form and the
//! API's).

use std::fmt;
use std::str::FromStr;

/// A campaign's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CampaignState {
    /// Created, never started.
    Draft,
    /// Started with its `start_at` ahead: it becomes active by itself then.
    Scheduled,
    /// Dialling.
    Active,
    /// Holding new calls (calls in progress go on).
    Paused,
    /// Every lead final.
    Completed,
    /// Removed (kept for its records).
    Archived,
}

/// A command of the lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LifecycleCommand {
    /// Draft → active (or scheduled, when its `start_at` is ahead: [`CampaignState::start`]).
    Start,
    /// Active → paused.
    Pause,
    /// Paused → active.
    Unpause,
    /// Paused → paused, with the stored settings and call lists applied.
    Reload,
    /// Draft, scheduled, paused or completed → archived.
    Remove,
    /// Completed or paused → paused, with the leads of chosen final dispositions made
    /// pending again (Vicidial's lead recycling); `unpause` dials them.
    Recycle,
}

impl CampaignState {
    /// Every state.
    pub const ALL: [Self; 6] = [
        Self::Draft,
        Self::Scheduled,
        Self::Active,
        Self::Paused,
        Self::Completed,
        Self::Archived,
    ];

    /// Its name (`draft`, `active`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Scheduled => "scheduled",
            Self::Active => "active",
            Self::Paused => "paused",
            Self::Completed => "completed",
            Self::Archived => "archived",
        }
    }

    /// The state `command` leads to from this one. Errors: why it is refused, for a 409
    /// (`cannot pause a campaign that is draft: only active campaigns pause`).
    pub fn apply(self, command: LifecycleCommand) -> Result<Self, String> {
        use CampaignState::*;
        use LifecycleCommand::*;
        let refuse = |why: &str| Err(format!("cannot {command} a campaign that is {self}: {why}"));
        match (command, self) {
            (Start, Draft) => Ok(Active),
            (Start, Scheduled) => refuse("it starts by itself at its start_at"),
            (Start, _) => refuse("only drafts start"),
            (Pause, Active) => Ok(Paused),
            (Pause | Unpause | Reload, Scheduled) => {
                refuse("it has not started: remove it, or let it start at its start_at")
            }
            (Pause, _) => refuse("only active campaigns pause"),
            (Unpause, Paused) => Ok(Active),
            (Unpause, _) => refuse("only paused campaigns unpause"),
            (Reload, Paused) => Ok(Paused),
            (Reload, Active) => refuse("pause it first (calls in progress finish), then reload"),
            (Reload, _) => refuse("only a paused campaign has settings to reload"),
            (Remove, Draft | Scheduled | Paused | Completed) => Ok(Archived),
            (Remove, Active) => refuse("pause it first"),
            (Remove, Archived) => refuse("it is archived already"),
            (Recycle, Completed | Paused) => Ok(Paused),
            (Recycle, Active) => refuse("pause it first"),
            (Recycle, _) => refuse("only completed or paused campaigns have leads to recycle"),
        }
    }
}

impl CampaignState {
    /// `start` on this state with the campaign's `start_at` ahead (`true`) or not: a draft
    /// becomes `scheduled` or `active`. Errors: as [`CampaignState::apply`].
    pub fn start(self, start_at_ahead: bool) -> Result<Self, String> {
        match self.apply(LifecycleCommand::Start)? {
            Self::Active if start_at_ahead => Ok(Self::Scheduled),
            next => Ok(next),
        }
    }

    /// The state a `scheduled` campaign takes when its `start_at` comes: `active`; `None`
    /// for any other state (it was removed meanwhile, or was never scheduled).
    pub fn at_start_at(self) -> Option<Self> {
        (self == Self::Scheduled).then_some(Self::Active)
    }
}

impl LifecycleCommand {
    /// Every command.
    pub const ALL: [Self; 6] = [
        Self::Start,
        Self::Pause,
        Self::Unpause,
        Self::Reload,
        Self::Remove,
        Self::Recycle,
    ];

    /// Its name (`start`, `pause`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::Pause => "pause",
            Self::Unpause => "unpause",
            Self::Reload => "reload",
            Self::Remove => "remove",
            Self::Recycle => "recycle",
        }
    }
}

impl fmt::Display for CampaignState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for LifecycleCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CampaignState {
    type Err = String;
    /// Errors: not a state's name.
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| {
                format!("{s:?}: states are draft, scheduled, active, paused, completed, archived")
            })
    }
}

impl FromStr for LifecycleCommand {
    type Err = String;
    /// Errors: not a command's name.
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| {
                format!("{s:?}: commands are start, pause, unpause, reload, remove, recycle")
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_legal_and_illegal_transition() {
        use CampaignState::*;
        use LifecycleCommand::*;
        let legal = [
            (Draft, Start, Active),
            (Active, Pause, Paused),
            (Paused, Unpause, Active),
            (Paused, Reload, Paused),
            (Draft, Remove, Archived),
            (Scheduled, Remove, Archived),
            (Paused, Remove, Archived),
            (Completed, Remove, Archived),
            (Completed, Recycle, Paused),
            (Paused, Recycle, Paused),
        ];
        for s in CampaignState::ALL {
            for c in LifecycleCommand::ALL {
                let want = legal.iter().find(|(ls, lc, _)| *ls == s && *lc == c);
                match (s.apply(c), want) {
                    (Ok(next), Some((_, _, w))) => assert_eq!(next, *w, "{s} {c}"),
                    (Err(e), None) => {
                        assert!(
                            e.contains(&format!("cannot {c} a campaign that is {s}")),
                            "{e}"
                        )
                    }
                    (got, want) => panic!("{s} {c}: {got:?}, want {want:?}"),
                }
            }
        }
        assert!(
            "launch"
                .parse::<LifecycleCommand>()
                .unwrap_err()
                .contains("commands are")
        );
        for s in CampaignState::ALL {
            assert_eq!(s.as_str().parse::<CampaignState>(), Ok(s));
        }
    }

    #[test]
    fn a_draft_with_its_start_at_ahead_is_scheduled_then_active() {
        use CampaignState::*;
        assert_eq!(Draft.start(true), Ok(Scheduled));
        assert_eq!(Draft.start(false), Ok(Active));
        assert!(Scheduled.start(true).is_err() && Paused.start(false).is_err());
        assert_eq!(Scheduled.at_start_at(), Some(Active));
        for s in [Draft, Active, Paused, Completed, Archived] {
            assert_eq!(s.at_start_at(), None, "{s}");
        }
    }
}
