//! IVR applications: what a campaign's `[ivr]` table says (nodes with a prompt, DTMF choices,
//! a timeout and retries, and actions), and the per-call state machine that runs one.
//!
//! [`Ivr`] is sans-IO like the other cores: fed the call's answer ([`Ivr::start`]), the end
//! of each prompt ([`Ivr::handle_playback_done`]), DTMF digits ([`Ivr::handle_dtmf`], from
//! RFC 4733 telephone-events or SIP INFO `application/dtmf-relay`), the end of a recording
//! ([`Ivr::handle_recorded`]) and time ([`Ivr::handle_timeout`]); it gives back what to do
//! ([`Ivr::poll_output`]: play a prompt, stop it, record, leave the IVR) and its next
//! wake-up ([`Ivr::poll_timeout`]). The engine carries the outputs out; the events it reports
//! are call events (`ivr_entered`, `ivr_choice`, `ivr_recorded`, `ivr_exit`). A `dnc` choice
//! is acted on by the campaign core when the `ivr_choice` event reaches it (the number goes on
//! the do-not-call list at once, even if the caller hangs up during the prompt after it).
//!
//! ```text
//! enter node ─▶ prompt playing ─(end)▶ waiting for a digit ─(timeout)▶ retry prompt … ─▶ on_timeout
//!                   │  (a digit: barge-in)        │ (a digit)
//!                   └──────────────▶ choice ◀─────┘  unknown digit: like a timeout
//! choice: queue | transfer (REFER) | record (prompt, then record until `#` or max_seconds) | dnc | hangup | goto
//! ```

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::events::CallEventKind;
use crate::time::later;

/// Longest a recording may last, seconds.
pub const MAX_RECORD_SECONDS: u32 = 600;
/// `goto`s one call may take before the IVR hangs up (a loop in the application).
pub const MAX_GOTOS: u32 = 50;
/// Nodes an application may have.
pub const MAX_NODES: usize = 200;

/// An IVR application (`[ivr]` in the campaign file, `ivr` in the API): its nodes by name and
/// the one entered when the call is answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IvrApp {
    /// The node entered on answer (default `main`).
    #[serde(default = "default_start")]
    pub start: String,
    /// The nodes by name.
    pub nodes: BTreeMap<String, IvrNode>,
    /// Where `record` choices' recordings are also sent by email (`[ivr.email]`), beside the
    /// webhook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<IvrEmail>,
}

/// Email delivery of IVR recordings (`[ivr.email]`): one message per recording, the WAV
/// attached, the lead's number and call-list columns in the text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IvrEmail {
    /// The SMTP server, `host:port`: plain SMTP to a relay (no TLS or login in this build,
    /// so a relay on the same host or network).
    pub smtp: String,
    /// The sender address.
    pub from: String,
    /// The recipients (a helpdesk, a ticket system's address). At least one.
    pub to: Vec<String>,
    /// The subject; `{number}` is replaced by the caller's number (default "Voice message
    /// from {number}").
    #[serde(default)]
    pub subject: Option<String>,
}

fn default_start() -> String {
    "main".into()
}

/// One menu of an IVR application.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IvrNode {
    /// Played on entering the node (WAV, 8 kHz mono, 16-bit PCM or G.711). A digit pressed
    /// while it plays stops it (barge-in). None: wait for a digit at once.
    #[serde(default)]
    pub prompt: Option<PathBuf>,
    /// Each DTMF digit (`0`–`9`, `*`, `#`, `A`–`D`) and what it does.
    #[serde(default)]
    pub choices: BTreeMap<String, IvrAction>,
    /// Seconds to wait for a digit after the prompt has played (default 5).
    #[serde(default = "default_timeout")]
    pub timeout: f64,
    /// Times the node is played again after no digit or an unknown one (default 2).
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// Played before each retry ("Sorry, I did not get that"). None: the prompt alone again.
    #[serde(default)]
    pub retry_prompt: Option<PathBuf>,
    /// What happens when the retries are used up (default: hang up).
    #[serde(default)]
    pub on_timeout: Option<IvrAction>,
}

fn default_timeout() -> f64 {
    5.0
}
fn default_retries() -> u32 {
    2
}

/// What a choice does (`{ action = "queue" }`, `{ action = "goto", node = "info" }`, …).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum IvrAction {
    /// To the campaign's ACD queue, for an agent (needs `[acd]`).
    Queue,
    /// Record the caller: `prompt` first ("leave your message after the tone"), then up to
    /// `max_seconds` of their audio or until they press `#`; the recording goes to the
    /// campaign's webhook (`ivr_recorded`, signed as every webhook, with the lead's
    /// attributes) and, when `recordings_dir` is set, to a WAV file there. Then hang up.
    Record {
        /// Played before recording.
        #[serde(default)]
        prompt: Option<PathBuf>,
        /// Longest recording, seconds (1–600, default 60).
        #[serde(default = "default_record_seconds")]
        max_seconds: u32,
    },
    /// Put the number on the do-not-call list (it is never dialled again, by any campaign),
    /// play `prompt` ("You will not be called again"), hang up.
    Dnc {
        /// Played before hanging up.
        #[serde(default)]
        prompt: Option<PathBuf>,
    },
    /// Play `prompt`, if any, and hang up.
    Hangup {
        /// Played before hanging up.
        #[serde(default)]
        prompt: Option<PathBuf>,
    },
    /// Play `prompt` ("please hold"), then transfer the call to `to` — a number, reached
    /// through the call's trunk, or a SIP URI — by REFER (RFC 3515): the trunk calls the
    /// target and we leave once it answered (`transferred`); refused or unanswered, the call
    /// is hung up (`transfer_failed`).
    Transfer {
        /// The target: a number or a `sip:` URI.
        to: String,
        /// Played before the transfer.
        #[serde(default)]
        prompt: Option<PathBuf>,
    },
    /// The caller asks to be called back by an agent: play `prompt` ("we will call you back
    /// in a few minutes"), hang up, and call the lead again after `after_seconds` (0–86,400,
    /// default 300) — that call goes straight to the agents, without the IVR. Needs `[acd]`.
    Callback {
        /// Seconds until the callback.
        #[serde(default = "default_callback_seconds")]
        after_seconds: u32,
        /// Played before hanging up.
        #[serde(default)]
        prompt: Option<PathBuf>,
    },
    /// Go to another node (its prompt plays, its retries start afresh).
    Goto {
        /// The node's name.
        node: String,
    },
}

fn default_record_seconds() -> u32 {
    60
}
fn default_callback_seconds() -> u32 {
    300
}

impl IvrAction {
    /// Its name (`queue`, `record`, `dnc`, `hangup`, `goto`), as events carry it.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Queue => "queue",
            Self::Record { .. } => "record",
            Self::Dnc { .. } => "dnc",
            Self::Hangup { .. } => "hangup",
            Self::Transfer { .. } => "transfer",
            Self::Callback { .. } => "callback",
            Self::Goto { .. } => "goto",
        }
    }

    fn prompt(&self) -> Option<&PathBuf> {
        match self {
            Self::Record { prompt, .. }
            | Self::Dnc { prompt }
            | Self::Hangup { prompt }
            | Self::Transfer { prompt, .. }
            | Self::Callback { prompt, .. } => prompt.as_ref(),
            Self::Queue | Self::Goto { .. } => None,
        }
    }
}

const DIGITS: &str = "0123456789*#ABCD";

impl IvrApp {
    /// Checks the application. Errors, each naming its place (`ivr.nodes.main.choices.7`):
    /// no nodes or more than [`MAX_NODES`], a node name that is not `[a-z0-9_]{1,64}`, an
    /// unknown `start` or `goto` node, a choice key
    /// that is not one DTMF digit, a timeout outside 0.5–60 s, more than 10 retries, a
    /// recording outside 1–[`MAX_RECORD_SECONDS`] s, `queue` without agents (`has_acd`).
    pub fn validate(&self, has_acd: bool) -> Result<(), String> {
        if self.nodes.is_empty() || self.nodes.len() > MAX_NODES {
            return Err(format!(
                "ivr.nodes: give 1 to {MAX_NODES} nodes, got {}",
                self.nodes.len()
            ));
        }
        if let Some(e) = &self.email {
            let port_ok = e
                .smtp
                .rsplit_once(':')
                .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0));
            if !port_ok {
                return Err(format!("ivr.email.smtp: {:?} is not host:port", e.smtp));
            }
            for a in std::iter::once(&e.from).chain(&e.to) {
                if !a.contains('@') || a.contains(char::is_whitespace) {
                    return Err(format!("ivr.email: {a:?} is not an email address"));
                }
            }
            if e.to.is_empty() {
                return Err("ivr.email.to: give at least one recipient".into());
            }
        }
        if !self.nodes.contains_key(&self.start) {
            return Err(format!(
                "ivr.start: no node {:?} (nodes: {})",
                self.start,
                self.node_names()
            ));
        }
        for (name, n) in &self.nodes {
            let at = format!("ivr.nodes.{name}");
            let plain = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_';
            if name.is_empty() || name.len() > 64 || !name.chars().all(plain) {
                return Err(format!(
                    "{at}: a node's name is 1-64 lowercase letters, digits or _ (it is a \
                     member name in the API's camelCase JSON too)"
                ));
            }
            if !(n.timeout.is_finite() && (0.5..=60.0).contains(&n.timeout)) {
                return Err(format!(
                    "{at}.timeout: must be 0.5..=60 seconds, got {}",
                    n.timeout
                ));
            }
            if n.retries > 10 {
                return Err(format!("{at}.retries: must be 0..=10, got {}", n.retries));
            }
            for (key, action) in &n.choices {
                if key.chars().count() != 1 || !DIGITS.contains(key.as_str()) {
                    return Err(format!(
                        "{at}.choices.{key}: a choice is one DTMF digit (0-9, *, #, A-D)"
                    ));
                }
                self.check_action(&format!("{at}.choices.{key}"), action, has_acd)?;
            }
            if let Some(a) = &n.on_timeout {
                self.check_action(&format!("{at}.on_timeout"), a, has_acd)?;
            }
        }
        Ok(())
    }

    fn check_action(&self, at: &str, a: &IvrAction, has_acd: bool) -> Result<(), String> {
        match a {
            IvrAction::Goto { node } if !self.nodes.contains_key(node) => Err(format!(
                "{at}: goto {node:?}: no such node (nodes: {})",
                self.node_names()
            )),
            IvrAction::Record { max_seconds, .. }
                if !(1..=MAX_RECORD_SECONDS).contains(max_seconds) =>
            {
                Err(format!(
                    "{at}.max_seconds: must be 1..={MAX_RECORD_SECONDS}, got {max_seconds}"
                ))
            }
            IvrAction::Transfer { to, .. }
                if to.trim().is_empty() || to.contains(char::is_whitespace) =>
            {
                Err(format!("{at}.to: a number or a SIP URI, without spaces"))
            }
            IvrAction::Callback { after_seconds, .. } if *after_seconds > 86_400 => Err(format!(
                "{at}.after_seconds: must be 0..=86400, got {after_seconds}"
            )),
            IvrAction::Callback { .. } if !has_acd => Err(format!(
                "{at}: callback needs agents (an [acd] table in the campaign)"
            )),
            IvrAction::Queue if !has_acd => Err(format!(
                "{at}: queue needs agents (an [acd] table in the campaign)"
            )),
            _ => Ok(()),
        }
    }

    fn node_names(&self) -> String {
        self.nodes.keys().cloned().collect::<Vec<_>>().join(", ")
    }

    /// Every audio file the application plays (each once), for the shell to load.
    pub fn prompts(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = Vec::new();
        let mut add = |p: Option<&PathBuf>| {
            if let Some(p) = p
                && !v.contains(p)
            {
                v.push(p.clone());
            }
        };
        for n in self.nodes.values() {
            add(n.prompt.as_ref());
            add(n.retry_prompt.as_ref());
            for a in n.choices.values().chain(n.on_timeout.as_ref()) {
                add(a.prompt());
            }
        }
        v
    }
}

pub use crate::events::IvrExit;

/// What the IVR asks the engine to do.
#[derive(Debug, Clone, PartialEq)]
pub enum IvrOutput {
    /// Play this audio file (one of [`IvrApp::prompts`]), replacing anything playing.
    Play(PathBuf),
    /// Stop the audio playing (barge-in).
    StopPlayback,
    /// Record the caller's audio for at most this long.
    Record(Duration),
    /// Stop the recording now (`#`).
    StopRecording,
    /// Transfer the call to this number or SIP URI (REFER); the exit that follows does not
    /// hang up.
    Transfer(String),
    /// A call event to report (`ivr_entered`, `ivr_choice`, `ivr_recorded`, `ivr_exit`).
    Event(CallEventKind),
    /// The IVR is over: queue the call, or hang it up.
    Exit(IvrExit),
}

/// Where the call is in its node.
#[derive(Debug, Clone, PartialEq)]
enum State {
    /// The node's prompt is playing (digits barge in).
    Prompt,
    /// The retry prompt is playing before the node's prompt again (digits barge in).
    RetryPrompt,
    /// Waiting for a digit until then.
    Waiting(Instant),
    /// An action's prompt is playing; then the action goes on.
    Then(IvrAction),
    /// Recording (until `#` or the media session's own limit, with a guard).
    Recording { started: Instant, guard: Instant },
    /// Over.
    Done,
}

/// One call's IVR. See the module documentation.
#[derive(Debug)]
pub struct Ivr {
    app: std::sync::Arc<IvrApp>,
    node: String,
    state: State,
    /// Retries used in this node.
    tries: u32,
    gotos: u32,
    /// `#` ended the recording.
    stop_by_key: bool,
    out: VecDeque<IvrOutput>,
}

impl Ivr {
    /// An IVR on `app` (validated with [`IvrApp::validate`]), not started.
    pub fn new(app: std::sync::Arc<IvrApp>) -> Self {
        Self {
            node: app.start.clone(),
            app,
            state: State::Done,
            tries: 0,
            gotos: 0,
            stop_by_key: false,
            out: VecDeque::new(),
        }
    }

    /// The call was answered (or found human): enter the start node.
    pub fn start(&mut self, now: Instant) {
        let start = self.app.start.clone();
        self.enter(now, start);
    }

    /// True once the IVR is over (exited).
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// True while recording.
    pub fn is_recording(&self) -> bool {
        matches!(self.state, State::Recording { .. })
    }

    /// The node recording, while recording.
    pub fn recording_node(&self) -> Option<&str> {
        self.is_recording().then_some(self.node.as_str())
    }

    fn node(&self) -> &IvrNode {
        self.app.nodes.get(&self.node).expect("validated node")
    }

    fn enter(&mut self, now: Instant, node: String) {
        self.node = node;
        self.tries = 0;
        self.out
            .push_back(IvrOutput::Event(CallEventKind::IvrEntered {
                node: self.node.clone(),
            }));
        self.play_node(now);
    }

    fn play_node(&mut self, now: Instant) {
        match self.node().prompt.clone() {
            Some(p) => {
                self.state = State::Prompt;
                self.out.push_back(IvrOutput::Play(p));
            }
            None => self.wait(now),
        }
    }

    fn wait(&mut self, now: Instant) {
        let t = Duration::from_secs_f64(self.node().timeout);
        self.state = State::Waiting(later(now, t));
    }

    /// The prompt playing ended.
    pub fn handle_playback_done(&mut self, now: Instant) {
        match std::mem::replace(&mut self.state, State::Done) {
            State::Prompt => self.wait(now),
            State::RetryPrompt => self.play_node(now),
            State::Then(action) => self.finish(now, action),
            other => self.state = other,
        }
    }

    /// A DTMF digit from the caller.
    pub fn handle_dtmf(&mut self, now: Instant, digit: char) {
        match &self.state {
            State::Prompt | State::RetryPrompt | State::Waiting(_) => {
                let playing = !matches!(self.state, State::Waiting(_));
                let choice = self.node().choices.get(digit.to_string().as_str()).cloned();
                let Some(action) = choice else {
                    // Unknown: a retry, at once (the prompt stops).
                    if playing {
                        self.out.push_back(IvrOutput::StopPlayback);
                    }
                    self.retry(now);
                    return;
                };
                if playing {
                    self.out.push_back(IvrOutput::StopPlayback);
                }
                self.out
                    .push_back(IvrOutput::Event(CallEventKind::IvrChoice {
                        node: self.node.clone(),
                        digit: digit.to_string(),
                        action: action.name().into(),
                    }));
                self.act(now, action);
            }
            State::Recording { .. } if digit == '#' => {
                self.stop_by_key = true;
                self.out.push_back(IvrOutput::StopRecording);
            }
            _ => {}
        }
    }

    /// The recording ended (by `#`, its limit, or the caller hanging up), `duration` long,
    /// kept in `file` (where the shell wrote it, if it did).
    pub fn handle_recorded(&mut self, _now: Instant, duration: Duration, file: Option<String>) {
        if !self.is_recording() {
            return;
        }
        self.out
            .push_back(IvrOutput::Event(CallEventKind::IvrRecorded {
                node: self.node.clone(),
                duration_ms: duration.as_millis() as u32,
                by_key: self.stop_by_key,
                file,
            }));
        self.exit(IvrExit::Recorded);
    }

    /// Time passed: a digit's wait may be over, a recording past its guard.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.state {
            State::Waiting(t) if t <= now => self.retry(now),
            State::Recording { started, guard } if guard <= now => {
                // The media session never reported the recording: end it here.
                self.handle_recorded(now, now.saturating_duration_since(started), None);
            }
            _ => {}
        }
    }

    /// When [`Self::handle_timeout`] must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::Waiting(t) => Some(t),
            State::Recording { guard, .. } => Some(guard),
            _ => None,
        }
    }

    /// The next thing to do.
    pub fn poll_output(&mut self) -> Option<IvrOutput> {
        self.out.pop_front()
    }

    fn retry(&mut self, now: Instant) {
        self.tries += 1;
        if self.tries > self.node().retries {
            let action = self.node().on_timeout.clone();
            match action {
                Some(a) => self.act(now, a),
                None => self.exit(IvrExit::Timeout),
            }
            return;
        }
        match self.node().retry_prompt.clone() {
            Some(p) => {
                self.state = State::RetryPrompt;
                self.out.push_back(IvrOutput::Play(p));
            }
            None => self.play_node(now),
        }
    }

    /// A chosen action: its prompt first, if it has one.
    fn act(&mut self, now: Instant, action: IvrAction) {
        if let IvrAction::Goto { node } = action {
            self.gotos += 1;
            if self.gotos > MAX_GOTOS {
                self.exit(IvrExit::Loop);
            } else {
                self.enter(now, node);
            }
            return;
        }
        match action.prompt().cloned() {
            Some(p) => {
                self.state = State::Then(action);
                self.out.push_back(IvrOutput::Play(p));
            }
            None => self.finish(now, action),
        }
    }

    /// An action after its prompt.
    fn finish(&mut self, now: Instant, action: IvrAction) {
        match action {
            IvrAction::Queue => self.exit(IvrExit::Queue),
            IvrAction::Record { max_seconds, .. } => {
                let max = Duration::from_secs(u64::from(max_seconds));
                self.stop_by_key = false;
                self.state = State::Recording {
                    started: now,
                    guard: later(now, max + Duration::from_secs(2)),
                };
                self.out.push_back(IvrOutput::Record(max));
            }
            IvrAction::Dnc { .. } => self.exit(IvrExit::Dnc),
            IvrAction::Hangup { .. } => self.exit(IvrExit::Hangup),
            IvrAction::Callback { after_seconds, .. } => {
                self.exit_with(IvrExit::Callback, Some(after_seconds))
            }
            IvrAction::Transfer { to, .. } => {
                self.out.push_back(IvrOutput::Transfer(to));
                self.exit(IvrExit::Transfer);
            }
            IvrAction::Goto { .. } => unreachable!("handled in act"),
        }
    }

    fn exit(&mut self, exit: IvrExit) {
        self.exit_with(exit, None);
    }

    fn exit_with(&mut self, exit: IvrExit, callback_after_s: Option<u32>) {
        self.state = State::Done;
        self.out.push_back(IvrOutput::Event(CallEventKind::IvrExit {
            node: self.node.clone(),
            exit,
            callback_after_s,
        }));
        self.out.push_back(IvrOutput::Exit(exit));
    }

    /// The call ended while in the IVR (the caller hung up): a recording in progress ends
    /// as recorded; anything else just stops.
    pub fn handle_hangup(&mut self, now: Instant) {
        if let State::Recording { started, .. } = self.state {
            self.handle_recorded(now, now.saturating_duration_since(started), None);
        } else {
            self.state = State::Done;
        }
    }
}
