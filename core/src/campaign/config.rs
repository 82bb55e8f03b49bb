//! Campaign settings: a TOML file, every field overridable from the command line.
//!
//! ```toml
//! name = "spring-renewals"
//! trunk = "sip:127.0.0.1:5080;transport=udp"   # the SIP trunk (far end)
//! caller_id = "+14155550000"                    # user part of From
//! caller_name = "Acme Renewals"                 # optional display name
//! p_asserted_identity = "sip:+14155550000@acme.example"   # optional, RFC 3325
//! cps = 10                                      # new calls per second (may be fractional)
//! max_concurrent = 20                           # calls in progress at once
//! ring_timeout = 30                             # seconds before CANCEL
//! hold_time = 5                                 # seconds an answered call stays up
//! default_region = "US"                         # optional: normalise numbers to E.164
//!
//! # Instead of `trunk`, a trunk group with weights and failover (see docs/trunks.md):
//! # [[trunks]]
//! # name = "carrier-a"
//! # uri = "sip:10.0.0.1:5060"
//! # weight = 3
//! # outbound_proxy = "sip:10.0.0.5:5060;lr"      # optional, RFC 3261 §8.1.2 pre-loaded Route
//!
//! [[reschedule_rules]]                          # retry rules per disposition
//! disposition = "busy"
//! retry_after = 60                              # seconds
//! max_attempts = 3                              # total attempts for the lead
//! ```

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use crate::call::actions::{HumanAction, MachineAction};
use crate::events::disposition::Disposition;
use crate::media::amd::AmdConfig;
use crate::sip::message::{Transport, host_port, parse_uri};

/// A retry rule for one disposition (the `rescheduleRules` of the API).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RescheduleRule {
    /// The disposition the rule applies to (`busy`, `no_answer`, `congestion`, …).
    pub disposition: Disposition,
    /// Seconds to wait before dialling the lead again.
    pub retry_after: u64,
    /// Total attempts allowed for the lead (the first one included), ≥ 1.
    pub max_attempts: u32,
}

fn default_cps() -> f64 {
    10.0
}
fn default_max_concurrent() -> u32 {
    20
}
fn default_ring_timeout() -> u64 {
    30
}
fn default_hold_time() -> f64 {
    5.0
}
fn default_bind() -> String {
    "127.0.0.1:0".into()
}
fn default_rtp_min() -> u16 {
    20000
}
fn default_rtp_max() -> u16 {
    29999
}
fn default_user_agent() -> String {
    format!("outdial/{}", env!("CARGO_PKG_VERSION"))
}

fn default_weight() -> u32 {
    1
}
fn default_failover_timeout() -> f64 {
    3.0
}
fn default_session_expires() -> u32 {
    1800
}
fn default_trunk_down_after() -> u32 {
    2
}

/// One trunk of a trunk group (`[[trunks]]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrunkConfig {
    /// Name in events (`trunk_failover`), logs and the summary; default `trunkN`.
    #[serde(default)]
    pub name: Option<String>,
    /// `sip:host[:port][;transport=udp|tcp]`.
    pub uri: String,
    /// Share of new calls relative to the other trunks (0: used only for failover).
    #[serde(default = "default_weight")]
    pub weight: u32,
    /// Outbound proxy in front of this trunk (`sip:host[:port];lr`): requests go to it with
    /// a pre-loaded `Route` header (RFC 3261 §8.1.2). Default: the campaign's
    /// `outbound_proxy`.
    #[serde(default)]
    pub outbound_proxy: Option<String>,
    /// Username for this trunk's digest challenges (default: the campaign's).
    #[serde(default)]
    pub auth_username: Option<String>,
    /// Password for this trunk's digest challenges; never stored or logged.
    #[serde(default, skip_serializing)]
    pub auth_password: Option<String>,
}

/// The settings of one campaign.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignConfig {
    /// Unique campaign name; a second run with the same name and database resumes it.
    pub name: String,
    /// Priority among campaigns sharing agents (`outdial serve`: campaigns with an `[acd]` on
    /// the same `local_address` run on one engine): higher-priority campaigns' answered
    /// calls are connected first, and they pace against the free agents first (default 0).
    #[serde(default)]
    pub priority: i32,
    /// Trunk URI: `sip:host[:port][;transport=udp|tcp]` (port 5060 and UDP by default).
    /// Give either this or `[[trunks]]`.
    #[serde(default)]
    pub trunk: String,
    /// A trunk group: calls spread by weight, failover to the next trunk on 408/500/502/503/
    /// 504 or no answer (docs/trunks.md).
    #[serde(default)]
    pub trunks: Vec<TrunkConfig>,
    /// Outbound proxy for every trunk without its own (`sip:host[:port];lr`).
    #[serde(default)]
    pub outbound_proxy: Option<String>,
    /// Seconds without any response from a trunk before the call moves to the next trunk
    /// (only when another trunk remains; the last one waits for Timer B, 64·T1 = 32 s).
    #[serde(default = "default_failover_timeout")]
    pub failover_timeout: f64,
    /// RFC 4028 session interval asked for on every INVITE, seconds (0: no session timer;
    /// otherwise ≥ 90). We offer to be the refresher: UPDATE when the far end allows it,
    /// else re-INVITE, at half the interval; BYE if the session expires unrefreshed.
    #[serde(default = "default_session_expires")]
    pub session_expires: u32,
    /// Seconds between OPTIONS keep-alive pings to each trunk (0: no pings).
    #[serde(default)]
    pub keepalive_interval: u64,
    /// Consecutive failures (INVITE or ping) that mark a trunk down.
    #[serde(default = "default_trunk_down_after")]
    pub trunk_down_after: u32,
    /// Caller ID: the user part of From (E.164 or digits).
    pub caller_id: String,
    /// Optional display name in From.
    #[serde(default)]
    pub caller_name: Option<String>,
    /// Optional `P-Asserted-Identity` URI.
    #[serde(default)]
    pub p_asserted_identity: Option<String>,
    /// Host part of the From URI; defaults to our SIP address.
    #[serde(default)]
    pub from_host: Option<String>,
    /// `Privacy` header value (RFC 3323), e.g. `id` to withhold the caller ID.
    #[serde(default)]
    pub privacy: Option<String>,
    /// Username for the trunk's digest challenges (401/407).
    #[serde(default)]
    pub auth_username: Option<String>,
    /// Password for the trunk's digest challenges. Never written to the database or logs
    /// (`OUTDIAL_AUTH_PASSWORD` in the environment also sets it).
    #[serde(default, skip_serializing)]
    pub auth_password: Option<String>,
    /// New calls per second, > 0 (fractions allowed: 0.5 is one call every 2 s).
    #[serde(default = "default_cps")]
    pub cps: f64,
    /// Calls in progress at once, ≥ 1.
    #[serde(default = "default_max_concurrent")]
    pub max_concurrent: u32,
    /// Seconds of ringing before CANCEL (counted from the INVITE).
    #[serde(default = "default_ring_timeout")]
    pub ring_timeout: u64,
    /// Seconds an answered call stays up before our BYE.
    #[serde(default = "default_hold_time")]
    pub hold_time: f64,
    /// ISO 3166 region (`US`, `GB`, …) for E.164 normalisation of national numbers.
    #[serde(default)]
    pub default_region: Option<String>,
    /// Local SIP address to bind (`127.0.0.1:0`: any free port on loopback).
    #[serde(default = "default_bind")]
    pub local_address: String,
    /// The IP peers reach us at, written in Via, Contact and SDP instead of the bound one
    /// (NAT, containers; needed when `local_address` is `0.0.0.0:…`).
    #[serde(default)]
    pub advertised_address: Option<String>,
    /// Address of the REST API while the campaign runs (`IP:port`; see docs/api.md); none
    /// (default): no API.
    #[serde(default)]
    pub api_listen: Option<String>,
    /// Lowest RTP port offered.
    #[serde(default = "default_rtp_min")]
    pub rtp_port_min: u16,
    /// Highest RTP port offered.
    #[serde(default = "default_rtp_max")]
    pub rtp_port_max: u16,
    /// `User-Agent` header.
    #[serde(default = "default_user_agent")]
    pub user_agent: String,
    /// Retry rules per disposition. Dispositions without a rule are final at once.
    #[serde(default)]
    pub reschedule_rules: Vec<RescheduleRule>,
    /// Answering-machine detection: `[amd]` with `profile = "default" | "asterisk" | "off"`
    /// and that profile's parameters (see docs/amd.md). Default: the `default` profile.
    #[serde(default)]
    pub amd: AmdConfig,
    /// Seconds without RTP after the answer before a `media_timeout` event (0: never).
    #[serde(default = "default_media_timeout")]
    pub media_timeout: u64,
    /// What `media_timeout` does: `event` (default: the event only) or `hangup` (then BYE,
    /// detail `media_timeout`, unless the call is on hold).
    #[serde(default)]
    pub media_timeout_action: crate::call::actions::MediaTimeoutAction,
    /// On a machine: `hangup` (default), `voicemail` (wait for the beep, play
    /// `voicemail_file`, hang up) or `continue`.
    #[serde(default)]
    pub on_machine: MachineAction,
    /// On a human or NOTSURE: `continue` (default), `hangup`, `prompt` (play `prompt_file`,
    /// hang up), `queue` (to an agent; the default with `[acd]`) or `ivr` (run `[ivr]`; with
    /// AMD off, from the answer).
    #[serde(default)]
    pub on_human: HumanAction,
    /// Voicemail message: WAV, 8 kHz mono, 16-bit PCM or G.711.
    #[serde(default)]
    pub voicemail_file: Option<std::path::PathBuf>,
    /// Prompt for humans: WAV, 8 kHz mono, 16-bit PCM or G.711.
    #[serde(default)]
    pub prompt_file: Option<std::path::PathBuf>,
    /// Longest wait for the beep after a machine decision before the voicemail plays, seconds.
    #[serde(default = "default_voicemail_wait")]
    pub voicemail_wait: u64,
    /// The IVR application run on humans when `on_human = "ivr"` (`[ivr]`: nodes with a
    /// prompt, DTMF choices, timeout, retries and actions; see docs/ivr.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ivr: Option<crate::ivr::IvrApp>,
    /// Where IVR recordings are written (a WAV per recording, named after the call); none:
    /// the system's temporary directory, `outdial-recordings/<campaign>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recordings_dir: Option<std::path::PathBuf>,
    /// Call recording (docs/acd.md, "Recording"): `off` (default; agents may still start
    /// one), `all` (every answered call, from the answer) or `agent_calls` (from the bridge
    /// to an agent). Stereo WAV files in `recordings_dir`.
    #[serde(default)]
    pub recording: crate::call::actions::RecordingMode,
    /// Days a call recording is kept before `outdial serve` deletes it (0, the default:
    /// kept until deleted by hand).
    #[serde(default)]
    pub recording_retention_days: u32,
    /// Inbound calls (`[inbound]`: `numbers`, `allow_from`): callers to the campaign's
    /// numbers are answered and queued to its agents ahead of outbound customers, while the
    /// campaign runs (docs/acd.md, "Inbound calls"). Needs `[acd]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inbound: Option<InboundSettings>,
    /// Agents and the ACD queue (`[acd]`, see docs/acd.md). Without it, answered calls follow
    /// their AMD actions and the hold time.
    #[serde(default)]
    pub acd: Option<AcdSettings>,
    /// Calling window (`[active_period]`: start_time, end_time, week_days, time_zone,
    /// lead_time_zone_attribute; see docs/pacing.md). None: any time.
    #[serde(default)]
    pub active_period: Option<super::window::ActivePeriod>,
    /// When the campaign starts by itself: RFC 3339 with its offset, in quotes
    /// (`"2026-12-24T09:00:00+01:00"`). `outdial run` waits for it before the first call;
    /// under `outdial serve`, `start` makes the campaign `scheduled` until then. None: at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_at: Option<String>,
    /// When the campaign stops by itself (RFC 3339, after `start_at`): no new call from then
    /// on; calls in progress finish, then the run ends and the campaign is `completed` with a
    /// `schedule_ended` event (leads not final stay as they are). None: when every lead is
    /// final.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_at: Option<String>,
    /// Pacing (`[endpoint]`: type, boost_factor, max_waiting_calls, abandon_cap, …; see
    /// docs/pacing.md). Needs `[acd]` except for `broadcast`.
    #[serde(default)]
    pub endpoint: Option<EndpointSettings>,
    /// Call-progress webhook (`[webhook]`: url, events, secret; see docs/api.md).
    #[serde(default)]
    pub webhook: Option<super::webhook::WebhookSettings>,
    /// An unknown `--amd-profile`, kept to be reported by `validate`.
    #[serde(skip)]
    pub amd_profile_error: Option<String>,
}

/// `[inbound]` of a campaign: which inbound INVITEs it answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InboundSettings {
    /// The campaign's numbers callers dial (the Request-URI's user part; E.164 or digits,
    /// compared on their digits). At least one.
    pub numbers: Vec<String>,
    /// Source IP addresses allowed to send inbound calls (default: the campaign's trunks'
    /// addresses — or, with `auth_username`, any source that authenticates). Anything else
    /// is refused with 403.
    #[serde(default)]
    pub allow_from: Vec<String>,
    /// Digest authentication of inbound INVITEs (RFC 3261 §22.3: a 407 challenge, realm
    /// `outdial-inbound`): the account the trunk calls in with. Give both or neither.
    #[serde(default)]
    pub auth_username: Option<String>,
    /// Its password. Never written to the database or logs (under `outdial serve`, give it in
    /// the service file's `[campaign_defaults.inbound]`).
    #[serde(default, skip_serializing)]
    pub auth_password: Option<String>,
}

/// The digest realm of inbound challenges.
pub const INBOUND_REALM: &str = "outdial-inbound";

impl InboundSettings {
    /// Errors: no number, a number without digits, an `allow_from` entry that is not an IP
    /// address, a username without a password or the reverse — each naming its field.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.numbers.is_empty() {
            bail!("inbound.numbers: give at least one number callers dial");
        }
        for n in &self.numbers {
            if !n.chars().any(|c| c.is_ascii_digit()) {
                bail!("inbound.numbers: {n:?} has no digits");
            }
        }
        for a in &self.allow_from {
            a.parse::<std::net::IpAddr>()
                .map_err(|_| anyhow::anyhow!("inbound.allow_from: {a:?} is not an IP address"))?;
        }
        if self.auth_username.is_some() != self.auth_password.is_some() {
            bail!("inbound.auth_username/auth_password: give both or neither");
        }
        Ok(())
    }
}

/// How the campaign paces its calls (`[endpoint]`, see docs/pacing.md). Without it calls
/// go out at `cps` up to `max_concurrent`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointSettings {
    /// `preview`, `progressive`, `predictive`, `adaptive` (Vicidial's level) or `broadcast`.
    #[serde(rename = "type")]
    pub kind: crate::pacing::DialMode,
    /// Calls per available agent in `progressive` (default 1).
    #[serde(default = "default_boost")]
    pub boost_factor: f64,
    /// No new call while this many answered calls wait for an agent (default 2).
    #[serde(default = "default_max_waiting")]
    pub max_waiting_calls: u32,
    /// Abandon-rate cap, 0–1 (default 0.03).
    #[serde(default = "default_abandon_cap")]
    pub abandon_cap: f64,
    /// Hours the abandon rate is measured over (default 24: Ofcom; 720 for the US TSR).
    #[serde(default = "default_abandon_window")]
    pub abandon_window_hours: u64,
    /// AMD's measured false-positive rate, 0–1, counted into the abandon rate (default 0).
    #[serde(default)]
    pub amd_false_positive: f64,
    /// Auto-pause when more than this many calls wait for an agent… (none: never).
    #[serde(default)]
    pub auto_pause_waiting: Option<u32>,
    /// …for this many seconds (default 10).
    #[serde(default = "default_auto_pause_after")]
    pub auto_pause_after: u64,
}

fn default_boost() -> f64 {
    1.0
}
fn default_max_waiting() -> u32 {
    2
}
fn default_abandon_cap() -> f64 {
    0.03
}
fn default_abandon_window() -> u64 {
    24
}
fn default_auto_pause_after() -> u64 {
    10
}

impl EndpointSettings {
    /// The pacer's settings.
    pub fn pacer(&self) -> crate::pacing::PacerConfig {
        crate::pacing::PacerConfig {
            mode: self.kind,
            boost_factor: self.boost_factor,
            max_waiting_calls: self.max_waiting_calls,
            abandon_cap: self.abandon_cap,
            window: std::time::Duration::from_secs(self.abandon_window_hours * 3600),
            amd_false_positive: self.amd_false_positive,
            auto_pause: self.auto_pause_waiting.map(|w| crate::pacing::AutoPause {
                waiting_above: w,
                after: std::time::Duration::from_secs(self.auto_pause_after),
            }),
            ..crate::pacing::PacerConfig::default()
        }
    }

    /// The checks beyond the numeric ranges, which [`CampaignConfig::validate`] checks first
    /// ([`CampaignConfig::RANGES`]). Errors: a value out of range, named.
    pub fn validate(&self) -> anyhow::Result<()> {
        if !(self.abandon_cap > 0.0 && self.abandon_cap < 1.0) {
            bail!(
                "endpoint.abandon_cap: a share between 0 and 1, got {}",
                self.abandon_cap
            );
        }
        if !(0.0..0.5).contains(&self.amd_false_positive) {
            bail!("endpoint.amd_false_positive: 0 to 0.5");
        }
        Ok(())
    }
}

/// One agent in `[[acd.agents]]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentSettings {
    /// Agent id = the SIP username its phone registers with.
    pub id: String,
    /// Its SIP password: turned into HA1 values at start-up and stored as those; never stored,
    /// serialised or logged itself. Without it (and without `uri`) the agent's HA1 must already
    /// be in the database (`outdial agent add`).
    #[serde(default, skip_serializing)]
    pub password: Option<String>,
    /// A static SIP URI instead of a registration: reached through the trunk (an extension on
    /// the PBX beside us), or straight at its address when its host is an IP literal with a
    /// port (`sip:2000@10.0.0.5:5060`).
    #[serde(default)]
    pub uri: Option<String>,
}

/// The `[acd]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcdSettings {
    /// `persistent` (default: the agent's phone is called once and stays connected) or
    /// `per_call` (the phone is INVITEd for each customer).
    #[serde(default)]
    pub mode: crate::acd::ConnectMode,
    /// `longest_idle` (default) or `round_robin`.
    #[serde(default)]
    pub strategy: crate::acd::Strategy,
    /// Seconds a human may wait for an agent before the call is abandoned (default 2).
    #[serde(default = "default_max_wait")]
    pub max_wait: f64,
    /// Seconds an agent's phone may ring (default 15).
    #[serde(default = "default_offer_timeout")]
    pub offer_timeout: u64,
    /// After-call work, seconds (default 5).
    #[serde(default = "default_wrap_up")]
    pub wrap_up: u64,
    /// Offers in a row not taken before the agent is paused (default 3; 0: never).
    #[serde(default = "default_max_misses")]
    pub max_misses: u32,
    /// Information message for abandoned customers: WAV, 8 kHz mono.
    #[serde(default)]
    pub abandon_message_file: Option<std::path::PathBuf>,
    /// Music on hold for a customer the agent holds: WAV, 8 kHz mono, looped (default: a
    /// soft chime every 2 s).
    #[serde(default)]
    pub hold_music_file: Option<std::path::PathBuf>,
    /// Queue AMD `notsure` calls like humans (default true).
    #[serde(default = "default_true")]
    pub queue_not_sure: bool,
    /// Seconds to wait at start for a first available agent before dialling anyway (default
    /// 30; 0: do not wait).
    #[serde(default = "default_wait_for_agents")]
    pub wait_for_agents: u64,
    /// Digest realm (default `outdial`).
    #[serde(default = "default_realm")]
    pub realm: String,
    /// Digest algorithms offered, most preferred first (default `["MD5"]`: baresip 1.0 /
    /// libre 1.1 fail a registration outright when any challenge names SHA-256; add
    /// `"SHA-256"` when every phone supports RFC 8760).
    #[serde(default = "default_algorithms")]
    pub digest_algorithms: Vec<crate::acd::DigestAlgorithm>,
    /// Shortest registration accepted, seconds (default 60).
    #[serde(default = "default_min_expires")]
    pub min_expires: u32,
    /// Longest registration granted, seconds (default 3600).
    #[serde(default = "default_max_expires")]
    pub max_expires: u32,
    /// Failed authentications from one address (within a minute) that block it for
    /// `block_secs` (default 5).
    #[serde(default = "default_max_auth_failures")]
    pub max_auth_failures: u32,
    /// How long a failing address is ignored, seconds (default 60).
    #[serde(default = "default_block_secs")]
    pub block_secs: u64,
    /// The dispositions agents set on their calls through the API/CLI (`sale`, `callback`,
    /// `not_interested`, …); empty (default): any text.
    #[serde(default)]
    pub dispositions: Vec<String>,
    /// Each call's wrap-up lasts until the agent sets its disposition, instead of `wrap_up`
    /// seconds (default false). Needs `dispositions`.
    #[serde(default)]
    pub mandatory_disposition: bool,
    /// The agents.
    #[serde(default)]
    pub agents: Vec<AgentSettings>,
}

fn default_max_wait() -> f64 {
    2.0
}
fn default_offer_timeout() -> u64 {
    15
}
fn default_wrap_up() -> u64 {
    5
}
fn default_max_misses() -> u32 {
    3
}
fn default_true() -> bool {
    true
}
fn default_wait_for_agents() -> u64 {
    30
}
fn default_realm() -> String {
    "outdial".into()
}
fn default_algorithms() -> Vec<crate::acd::DigestAlgorithm> {
    vec![crate::acd::DigestAlgorithm::Md5]
}
fn default_min_expires() -> u32 {
    60
}
fn default_max_expires() -> u32 {
    3600
}
fn default_max_auth_failures() -> u32 {
    5
}
fn default_block_secs() -> u64 {
    60
}

impl AcdSettings {
    /// Checks the table beyond the numeric ranges, which [`CampaignConfig::validate`] checks
    /// first ([`CampaignConfig::RANGES`]: `max_wait`, `offer_timeout`, the number of agents,
    /// …). Errors name the field.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.digest_algorithms.is_empty() {
            bail!("acd.digest_algorithms: give at least one of \"MD5\", \"SHA-256\"");
        }
        if self.min_expires > self.max_expires {
            bail!("acd.min_expires/max_expires: need 1 ≤ min ≤ max");
        }
        if self.mandatory_disposition && self.dispositions.is_empty() {
            bail!(
                "acd.mandatory_disposition: list the campaign's dispositions in acd.dispositions"
            );
        }
        for d in &self.dispositions {
            if d.trim().is_empty() || d.len() > 64 {
                bail!("acd.dispositions: {d:?} must be 1 to 64 characters");
            }
        }
        let mut seen = std::collections::HashSet::new();
        for a in &self.agents {
            if a.id.is_empty()
                || !a
                    .id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.+".contains(c))
            {
                bail!(
                    "acd.agents: id {:?} must be a SIP user name (letters, digits, - _ . +)",
                    a.id
                );
            }
            if !seen.insert(a.id.as_str()) {
                bail!("acd.agents: agent {} is listed twice", a.id);
            }
            if a.password.is_some() && a.uri.is_some() {
                bail!(
                    "acd.agents[{}]: give a password (registering phone) or a uri (static), not both",
                    a.id
                );
            }
            if let Some(u) = &a.uri {
                crate::sip::message::parse_uri(u)
                    .map_err(|e| anyhow::anyhow!("acd.agents[{}].uri: {e}", a.id))?;
            }
        }
        Ok(())
    }

    /// Max wait as a duration.
    pub fn max_wait(&self) -> Duration {
        Duration::from_secs_f64(self.max_wait)
    }
}

fn default_media_timeout() -> u64 {
    10
}
fn default_voicemail_wait() -> u64 {
    8
}

/// A trunk of the group with its defaults applied.
#[derive(Debug, Clone)]
pub struct ResolvedTrunkConfig {
    /// Unique name.
    pub name: String,
    /// Its URI taken apart.
    pub target: TrunkTarget,
    /// Weight.
    pub weight: u32,
    /// Outbound proxy URI (`sip:host[:port];lr`), its own or the campaign's.
    pub outbound_proxy: Option<String>,
    /// (username, password) for digest challenges, its own or the campaign's.
    pub auth: Option<(String, String)>,
}

impl ResolvedTrunkConfig {
    /// The outbound proxy taken apart. Errors: not a SIP URI.
    pub fn outbound_proxy_target(&self) -> anyhow::Result<TrunkTarget> {
        let p = self.outbound_proxy.as_deref().unwrap_or_default();
        TrunkTarget::parse(p).with_context(|| format!("outbound_proxy of trunk {}", self.name))
    }
}

/// The trunk URI taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrunkTarget {
    /// Host as written (name or IP literal).
    pub host: String,
    /// Port (5060 by default).
    pub port: u16,
    /// Transport (`transport=` parameter; UDP by default).
    pub transport: Transport,
}

impl TrunkTarget {
    /// Parses `sip:host[:port][;transport=udp|tcp]`. Errors: not a SIP URI, or an
    /// unsupported transport.
    pub fn parse(uri: &str) -> anyhow::Result<Self> {
        if !uri.trim_start().to_ascii_lowercase().starts_with("sip:") {
            bail!("trunk {uri:?}: expected a sip: URI such as sip:10.0.0.1:5060;transport=udp");
        }
        let u = parse_uri(uri).map_err(|e| anyhow::anyhow!("trunk {uri:?}: {e}"))?;
        let (host, port) = host_port(&u);
        let mut transport = Transport::Udp;
        let lower = uri.to_ascii_lowercase();
        if let Some(i) = lower.find(";transport=") {
            let v: String = lower[i + 11..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .collect();
            transport = match v.as_str() {
                "udp" => Transport::Udp,
                "tcp" => Transport::Tcp,
                other => bail!("trunk {uri:?}: transport {other:?} is not supported (udp, tcp)"),
            };
        }
        Ok(Self {
            host,
            port,
            transport,
        })
    }

    /// The Request-URI for a number on this trunk.
    pub fn request_uri(&self, number: &str) -> String {
        trunk_request_uri(number, &self.host, self.port, self.transport)
    }
}

/// `sip:NUMBER@host:port` (`;transport=tcp` over TCP; an IPv6 host in brackets): the
/// Request-URI of a call on a trunk.
pub fn trunk_request_uri(number: &str, host: &str, port: u16, transport: Transport) -> String {
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    match transport {
        Transport::Udp => format!("sip:{number}@{host}:{port}"),
        Transport::Tcp => format!("sip:{number}@{host}:{port};transport=tcp"),
    }
}

/// A UTC date and time.
type Utc = chrono::DateTime<chrono::Utc>;

/// An RFC 3339 date and time of field `field`, in UTC. Errors: not RFC 3339 (with its offset).
fn rfc3339(field: &str, v: &str) -> anyhow::Result<Utc> {
    chrono::DateTime::parse_from_rfc3339(v.trim())
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| {
            anyhow::anyhow!(
                "{field}: {v:?} is not an RFC 3339 date and time with its offset \
                 (e.g. \"2026-12-24T09:00:00+01:00\"): {e}"
            )
        })
}

impl CampaignConfig {
    /// `start_at` and `stop_at` in UTC. Errors: one that is not RFC 3339 with an offset.
    pub fn schedule(&self) -> anyhow::Result<(Option<Utc>, Option<Utc>)> {
        Ok((
            self.start_at
                .as_deref()
                .map(|v| rfc3339("start_at", v))
                .transpose()?,
            self.stop_at
                .as_deref()
                .map(|v| rfc3339("stop_at", v))
                .transpose()?,
        ))
    }

    /// Checks every setting. Errors name the field and the allowed range.
    pub fn validate(&self) -> anyhow::Result<()> {
        self.check_ranges()?;
        if let Some(p) = &self.active_period {
            super::window::CallingWindow::new(p)?;
        }
        if let (Some(start), Some(stop)) = self.schedule()?
            && stop <= start
        {
            bail!("stop_at: must be after start_at ({start} .. {stop})");
        }
        if let Some(e) = &self.endpoint {
            e.validate()?;
            let needs_agents = !matches!(e.kind, crate::pacing::DialMode::Broadcast);
            if needs_agents && self.acd.is_none() {
                bail!(
                    "endpoint.type: {} pacing needs agents (an [acd] table)",
                    e.kind.as_str()
                );
            }
        }
        if let Some(w) = &self.webhook {
            w.validate()?;
        }
        if let Some(a) = &self.advertised_address
            && a.parse::<std::net::IpAddr>().is_err()
        {
            bail!("advertised_address: {a:?} is not an IP address");
        }
        if let Some(a) = &self.api_listen
            && a.parse::<std::net::SocketAddr>().is_err()
        {
            bail!("api_listen: {a:?} is not an IP:port address");
        }
        if self.name.trim().is_empty() {
            bail!("name: must not be empty");
        }
        let group = self.trunk_group()?;
        let mut names = std::collections::HashSet::new();
        for t in &group {
            if !names.insert(t.name.clone()) {
                bail!("trunks: two trunks named {:?}", t.name);
            }
            if t.outbound_proxy.is_some()
                && t.outbound_proxy_target()?.transport != t.target.transport
            {
                bail!(
                    "trunks[{}]: outbound_proxy and uri must use the same transport",
                    t.name
                );
            }
        }
        if group
            .iter()
            .any(|t| t.target.transport != group[0].target.transport)
        {
            bail!("trunks: every trunk must use the same transport (udp or tcp)");
        }
        if group.iter().all(|t| t.weight == 0) {
            bail!("trunks: at least one trunk needs a weight > 0");
        }
        if self.session_expires != 0 && self.session_expires < crate::call::leg::MIN_SE {
            bail!(
                "session_expires: must be 0 (off) or ≥ {} seconds (RFC 4028 Min-SE), got {}",
                crate::call::leg::MIN_SE,
                self.session_expires
            );
        }
        if self.caller_id.is_empty()
            || !self
                .caller_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-_.".contains(c))
        {
            bail!(
                "caller_id: {:?} is not a valid SIP user part",
                self.caller_id
            );
        }
        if let Some(r) = &self.default_region {
            r.parse::<phonenumber::country::Id>().map_err(|_| {
                anyhow::anyhow!("default_region: {r:?} is not an ISO 3166 region code")
            })?;
        }
        let local = self
            .local_address
            .parse::<SocketAddr>()
            .with_context(|| format!("local_address: {:?} is not IP:port", self.local_address))?;
        if local.ip().is_unspecified() && self.advertised_address.is_none() {
            bail!(
                "local_address: {local} binds every interface: set `advertised_address` to the IP \
                 the trunk and phones reach this host at"
            );
        }
        if self.rtp_port_min >= self.rtp_port_max || self.rtp_port_min < 1024 {
            bail!(
                "rtp_port_min/rtp_port_max: need 1024 ≤ min < max, got {}..{}",
                self.rtp_port_min,
                self.rtp_port_max
            );
        }
        let ports = (u32::from(self.rtp_port_max) - u32::from(self.rtp_port_min)) / 2 + 1;
        if ports < self.max_concurrent {
            bail!(
                "max_concurrent: {} calls need as many RTP ports, and rtp_port_min..rtp_port_max \
                 holds {ports} even ports",
                self.max_concurrent
            );
        }
        if self.auth_username.is_some() != self.auth_password.is_some() {
            bail!("auth_username/auth_password: give both or neither");
        }
        if let Some(p) = &self.amd_profile_error {
            bail!("amd: unknown profile {p:?} (default, asterisk, off)");
        }
        if self.on_machine == MachineAction::Voicemail && self.voicemail_file.is_none() {
            bail!("voicemail_file: required when on_machine = \"voicemail\"");
        }
        if self.on_human == HumanAction::Prompt && self.prompt_file.is_none() {
            bail!("prompt_file: required when on_human = \"prompt\"");
        }
        self.validate_actions()?;
        if let Some(a) = &self.acd {
            a.validate()?;
        }
        let mut seen = std::collections::HashSet::new();
        for r in &self.reschedule_rules {
            if !seen.insert(r.disposition) {
                bail!("reschedule_rules: two rules for {}", r.disposition);
            }
            if r.max_attempts == 0 {
                bail!(
                    "reschedule_rules[{}]: max_attempts must be ≥ 1",
                    r.disposition
                );
            }
            if r.disposition == Disposition::Answered || r.disposition.spares_the_lead() {
                bail!(
                    "reschedule_rules: {} cannot be retried by a rule",
                    r.disposition
                );
            }
        }
        Ok(())
    }

    /// What the actions on answered calls need: `on_human` against `[ivr]` and `[acd]`, and
    /// `[inbound]` (agents). Errors name the field.
    fn validate_actions(&self) -> anyhow::Result<()> {
        match (&self.ivr, self.on_human) {
            (Some(app), HumanAction::Ivr) => app
                .validate(self.acd.is_some())
                .map_err(|e| anyhow::anyhow!(e))?,
            (None, HumanAction::Ivr) => {
                bail!("on_human = \"ivr\": needs an [ivr] table (docs/ivr.md)")
            }
            (Some(_), _) => bail!("ivr: set on_human = \"ivr\" to run it"),
            (None, _) => {}
        }
        if let Some(i) = &self.inbound {
            i.validate()?;
            if self.acd.is_none() {
                bail!("inbound: needs agents (an [acd] table) to take the calls");
            }
        }
        if self.media_timeout_action == crate::call::actions::MediaTimeoutAction::Hangup
            && self.media_timeout == 0
        {
            bail!("media_timeout_action = \"hangup\": needs media_timeout > 0 (seconds)");
        }
        if self.on_human == HumanAction::Queue && self.acd.is_none() {
            bail!("on_human = \"queue\": needs an [acd] table with agents");
        }
        Ok(())
    }

    /// Every numeric setting against its range (see [`RANGES`](Self::RANGES)): one table,
    /// checked once for the CLI and the API alike, so that no accepted value can overflow a
    /// timer or a queue later. Errors: `field: must be LO..=HI UNIT, got V`.
    fn check_ranges(&self) -> anyhow::Result<()> {
        // `shown`: the value as given (a u64 printed exactly, not as its f64).
        let check = |field: &str, v: f64, shown: &dyn std::fmt::Display| -> anyhow::Result<()> {
            let (lo, hi, unit) = Self::range_of(field);
            if !(v.is_finite() && v >= lo && v <= hi) {
                bail!("{field}: must be {lo}..={hi} {unit}, got {shown}");
            }
            Ok(())
        };
        let int = |field: &str, v: u64| check(field, v as f64, &v);
        let real = |field: &str, v: f64| check(field, v, &v);
        real("cps", self.cps)?;
        int("max_concurrent", self.max_concurrent.into())?;
        int("ring_timeout", self.ring_timeout)?;
        real("hold_time", self.hold_time)?;
        real("failover_timeout", self.failover_timeout)?;
        int("session_expires", self.session_expires.into())?;
        int("keepalive_interval", self.keepalive_interval)?;
        int("trunk_down_after", self.trunk_down_after.into())?;
        int("media_timeout", self.media_timeout)?;
        int("voicemail_wait", self.voicemail_wait)?;
        for r in &self.reschedule_rules {
            int("reschedule_rules.retry_after", r.retry_after)?;
            int("reschedule_rules.max_attempts", r.max_attempts.into())?;
        }
        if let Some(a) = &self.acd {
            real("acd.max_wait", a.max_wait)?;
            int("acd.offer_timeout", a.offer_timeout)?;
            int("acd.wrap_up", a.wrap_up)?;
            int("acd.max_misses", a.max_misses.into())?;
            int("acd.wait_for_agents", a.wait_for_agents)?;
            int("acd.min_expires", a.min_expires.into())?;
            int("acd.max_expires", a.max_expires.into())?;
            int("acd.max_auth_failures", a.max_auth_failures.into())?;
            int("acd.block_secs", a.block_secs)?;
            int("acd.agents", a.agents.len() as u64)?;
        }
        if let Some(e) = &self.endpoint {
            real("endpoint.boost_factor", e.boost_factor)?;
            int("endpoint.max_waiting_calls", e.max_waiting_calls.into())?;
            int("endpoint.abandon_window_hours", e.abandon_window_hours)?;
            int("endpoint.auto_pause_after", e.auto_pause_after)?;
            if let Some(w) = e.auto_pause_waiting {
                int("endpoint.auto_pause_waiting", w.into())?;
            }
        }
        if let Some(w) = &self.webhook {
            int("webhook.max_attempts", w.max_attempts.into())?;
            int("webhook.queue", w.queue as u64)?;
            int("webhook.timeout", w.timeout)?;
        }
        Ok(())
    }

    /// The range of every numeric setting: `(name, lowest, highest, unit)`. Durations are
    /// capped at a day (a week for retries), rates kept above a floor, queues bounded.
    pub const RANGES: &'static [(&'static str, f64, f64, &'static str)] = &[
        ("cps", 0.001, 100_000.0, "calls per second"),
        ("max_concurrent", 1.0, 100_000.0, "calls"),
        ("ring_timeout", 1.0, 600.0, "seconds"),
        ("hold_time", 0.0, 86_400.0, "seconds"),
        ("failover_timeout", 0.1, 64.0, "seconds"),
        ("session_expires", 0.0, 86_400.0, "seconds"),
        ("keepalive_interval", 0.0, 3_600.0, "seconds"),
        ("trunk_down_after", 1.0, 1_000.0, "failures"),
        ("media_timeout", 0.0, 86_400.0, "seconds"),
        ("voicemail_wait", 0.0, 600.0, "seconds"),
        ("reschedule_rules.retry_after", 0.0, 604_800.0, "seconds"),
        ("reschedule_rules.max_attempts", 1.0, 100.0, "attempts"),
        ("acd.max_wait", 0.001, 600.0, "seconds"),
        ("acd.offer_timeout", 1.0, 600.0, "seconds"),
        ("acd.wrap_up", 0.0, 86_400.0, "seconds"),
        ("acd.max_misses", 0.0, 1_000.0, "offers"),
        ("acd.wait_for_agents", 0.0, 86_400.0, "seconds"),
        ("acd.min_expires", 1.0, 86_400.0, "seconds"),
        ("acd.max_expires", 1.0, 86_400.0, "seconds"),
        ("acd.max_auth_failures", 0.0, 1_000.0, "failures"),
        ("acd.block_secs", 0.0, 86_400.0, "seconds"),
        ("acd.agents", 1.0, 10_000.0, "agents"),
        ("endpoint.boost_factor", 1.0, 10.0, ""),
        ("endpoint.max_waiting_calls", 1.0, 10_000.0, "calls"),
        ("endpoint.abandon_window_hours", 1.0, 720.0, "hours"),
        ("endpoint.auto_pause_after", 0.0, 86_400.0, "seconds"),
        ("endpoint.auto_pause_waiting", 0.0, 10_000.0, "calls"),
        ("webhook.max_attempts", 1.0, 100.0, "attempts"),
        (
            "webhook.queue",
            1.0,
            super::webhook::MAX_QUEUE as f64,
            "events",
        ),
        ("webhook.timeout", 1.0, 600.0, "seconds"),
    ];

    fn range_of(field: &str) -> (f64, f64, &'static str) {
        Self::RANGES
            .iter()
            .find(|r| r.0 == field)
            .map(|r| (r.1, r.2, r.3))
            .expect("every checked field is in RANGES")
    }

    /// The rule for a disposition, if any.
    pub fn rule_for(&self, d: Disposition) -> Option<&RescheduleRule> {
        self.reschedule_rules.iter().find(|r| r.disposition == d)
    }

    /// The trunk group: `[[trunks]]`, or the one `trunk` as a group of one (named `trunk`).
    /// Credentials and the outbound proxy fall back to the campaign's. Errors: neither or
    /// both of `trunk` and `trunks`, or a URI that does not parse (named).
    pub fn trunk_group(&self) -> anyhow::Result<Vec<ResolvedTrunkConfig>> {
        let list: Vec<TrunkConfig> = match (self.trunk.trim().is_empty(), self.trunks.is_empty()) {
            (false, true) => vec![TrunkConfig {
                name: Some("trunk".into()),
                uri: self.trunk.clone(),
                weight: 1,
                outbound_proxy: None,
                auth_username: None,
                auth_password: None,
            }],
            (true, false) => self.trunks.clone(),
            (true, true) => bail!("trunk: give a trunk URI (or a [[trunks]] group)"),
            (false, false) => bail!("trunk/trunks: give one trunk or a [[trunks]] group, not both"),
        };
        list.into_iter()
            .enumerate()
            .map(|(i, t)| {
                let name = t.name.clone().unwrap_or_else(|| format!("trunk{}", i + 1));
                let target =
                    TrunkTarget::parse(&t.uri).with_context(|| format!("trunks[{name}]"))?;
                let outbound_proxy = t.outbound_proxy.clone().or(self.outbound_proxy.clone());
                let auth = match (&t.auth_username, &t.auth_password) {
                    (Some(u), Some(p)) => Some((u.clone(), p.clone())),
                    (None, None) => match (&self.auth_username, &self.auth_password) {
                        (Some(u), Some(p)) => Some((u.clone(), p.clone())),
                        _ => None,
                    },
                    _ => bail!("trunks[{name}]: give auth_username and auth_password together"),
                };
                Ok(ResolvedTrunkConfig {
                    name,
                    target,
                    weight: t.weight,
                    outbound_proxy,
                    auth,
                })
            })
            .collect()
    }

    /// Failover timeout as a duration.
    pub fn failover_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.failover_timeout)
    }

    /// Ring timeout as a duration.
    pub fn ring_timeout(&self) -> Duration {
        Duration::from_secs(self.ring_timeout)
    }

    /// Hold time as a duration.
    pub fn hold_time(&self) -> Duration {
        Duration::from_secs_f64(self.hold_time)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> CampaignConfig {
        toml::from_str(
            r#"
name = "t"
trunk = "sip:127.0.0.1:5080"
caller_id = "+14155550000"
[[reschedule_rules]]
disposition = "busy"
retry_after = 2
max_attempts = 3
"#,
        )
        .unwrap()
    }

    #[test]
    fn defaults_and_rules() {
        let c = base();
        c.validate().unwrap();
        assert_eq!(c.cps, 10.0);
        assert_eq!(c.rule_for(Disposition::Busy).unwrap().max_attempts, 3);
        assert!(c.rule_for(Disposition::NoAnswer).is_none());
    }

    #[test]
    fn hanging_up_on_a_media_timeout_needs_one() {
        let parse = |extra: &str| -> CampaignConfig {
            toml::from_str(&format!(
                "name = \"t\"\ntrunk = \"sip:127.0.0.1:5080\"\ncaller_id = \"+1415\"\n{extra}"
            ))
            .unwrap()
        };
        let e = parse("media_timeout = 0\nmedia_timeout_action = \"hangup\"")
            .validate()
            .unwrap_err()
            .to_string();
        assert!(e.contains("needs media_timeout > 0"), "{e}");
        let c = parse("media_timeout = 5\nmedia_timeout_action = \"hangup\"");
        c.validate().unwrap();
        assert_eq!(
            c.media_timeout_action,
            crate::call::actions::MediaTimeoutAction::Hangup
        );
        assert_eq!(
            base().media_timeout_action,
            crate::call::actions::MediaTimeoutAction::Event
        );
    }

    #[test]
    fn a_trunk_with_half_its_credentials_is_refused() {
        let c: CampaignConfig = toml::from_str(
            r#"
name = "t"
caller_id = "+14155550000"
[[trunks]]
name = "a"
uri = "sip:127.0.0.1:5080"
auth_username = "acme"
"#,
        )
        .unwrap();
        let e = c.validate().unwrap_err().to_string();
        assert!(
            e.contains("trunks[a]: give auth_username and auth_password together"),
            "{e}"
        );
    }

    #[test]
    fn pacing_and_windows_are_checked() {
        let base = "name = \"x\"\ntrunk = \"sip:127.0.0.1:5080\"\ncaller_id = \"+1415\"\n";
        let err = |extra: &str| {
            let c: CampaignConfig = toml::from_str(&format!("{base}{extra}")).unwrap();
            c.validate().unwrap_err().to_string()
        };
        assert!(err("[endpoint]\ntype = \"predictive\"\n").contains("needs agents"));
        let acd = "[acd]\n[[acd.agents]]\nid = \"1001\"\npassword = \"pw\"\n";
        assert!(err("[endpoint]\ntype = \"preview\"\n").contains("needs agents"));
        assert!(
            err(&format!(
                "[endpoint]\ntype = \"progressive\"\nboost_factor = 0.5\n{acd}"
            ))
            .contains("boost_factor")
        );
        assert!(
            err("[active_period]\nstart_time = \"09:00\"\nend_time = \"21:00\"\ntime_zone = \"Nowhere\"\n")
                .contains("time_zone")
        );
        let ok: CampaignConfig =
            toml::from_str(&format!("{base}[endpoint]\ntype = \"broadcast\"\n")).unwrap();
        ok.validate().unwrap();
    }

    #[test]
    fn unknown_field_is_an_error() {
        let r: Result<CampaignConfig, _> =
            toml::from_str("name='a'\ntrunk='sip:h'\ncaller_id='1'\ncsp=3\n");
        assert!(r.unwrap_err().to_string().contains("csp"));
    }

    #[test]
    fn amd_table_and_actions() {
        let c: CampaignConfig = toml::from_str(
            "name='a'\ntrunk='sip:h'\ncaller_id='1'\non_machine='voicemail'\n\
voicemail_file='vm.wav'\n[amd]\nprofile='asterisk'\ngreeting=2000\n",
        )
        .unwrap();
        c.validate().unwrap();
        match c.amd {
            AmdConfig::Asterisk(p) => assert_eq!((p.greeting, p.initial_silence), (2000, 2500)),
            other => panic!("{other:?}"),
        }
        assert_eq!(c.on_machine, MachineAction::Voicemail);
        let d: CampaignConfig = toml::from_str("name='a'\ntrunk='sip:h'\ncaller_id='1'\n").unwrap();
        assert!(matches!(d.amd, AmdConfig::Default(_)));
        assert_eq!(
            (d.on_machine, d.on_human),
            (MachineAction::Hangup, HumanAction::Continue)
        );
        let bad: Result<CampaignConfig, _> =
            toml::from_str("name='a'\ntrunk='sip:h'\ncaller_id='1'\n[amd]\nprofile='x'\n");
        assert!(bad.is_err());
        let mut e = d.clone();
        e.on_human = HumanAction::Prompt;
        assert!(
            e.validate()
                .unwrap_err()
                .to_string()
                .starts_with("prompt_file")
        );
    }

    #[test]
    fn trunk_uri_forms() {
        let t = TrunkTarget::parse("sip:10.1.2.3:5080;transport=tcp").unwrap();
        assert_eq!((t.port, t.transport), (5080, Transport::Tcp));
        assert_eq!(
            t.request_uri("+1555"),
            "sip:+1555@10.1.2.3:5080;transport=tcp"
        );
        let t = TrunkTarget::parse("sip:trunk.example").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.transport),
            ("trunk.example", 5060, Transport::Udp)
        );
        assert!(TrunkTarget::parse("sip:h;transport=sctp").is_err());
        assert!(TrunkTarget::parse("http://h").is_err());
    }
}
