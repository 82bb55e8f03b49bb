//! The campaign file as `outdial run` reads it: TOML, then one command-line flag per field
//! ([`Overrides`]), then validation. (The settings themselves, and their checks, are the core
//! crate's `campaign::config`.)

use std::path::Path;

use anyhow::Context;

use crate::call::actions::{HumanAction, MachineAction};
use crate::campaign::config::CampaignConfig;
use crate::media::amd::AmdConfig;

/// Command-line overrides: one flag per campaign field; every `None` keeps the file's value.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Overrides {
    /// Campaign name.
    #[arg(long)]
    pub name: Option<String>,
    /// Trunk URI, e.g. sip:10.0.0.1:5060;transport=tcp.
    #[arg(long)]
    pub trunk: Option<String>,
    /// Outbound proxy URI, e.g. sip:10.0.0.5:5060;lr.
    #[arg(long)]
    pub outbound_proxy: Option<String>,
    /// Seconds between OPTIONS pings to each trunk (0: none).
    #[arg(long)]
    pub keepalive_interval: Option<u64>,
    /// Seconds without a response before the call moves to the next trunk.
    #[arg(long)]
    pub failover_timeout: Option<f64>,
    /// Caller ID (From user part).
    #[arg(long)]
    pub caller_id: Option<String>,
    /// Display name in From.
    #[arg(long)]
    pub caller_name: Option<String>,
    /// P-Asserted-Identity URI.
    #[arg(long)]
    pub p_asserted_identity: Option<String>,
    /// Host part of the From URI.
    #[arg(long)]
    pub from_host: Option<String>,
    /// New calls per second.
    #[arg(long)]
    pub cps: Option<f64>,
    /// Calls in progress at once.
    #[arg(long)]
    pub max_concurrent: Option<u32>,
    /// Seconds of ringing before CANCEL.
    #[arg(long)]
    pub ring_timeout: Option<u64>,
    /// Seconds an answered call stays up before BYE.
    #[arg(long)]
    pub hold_time: Option<f64>,
    /// ISO 3166 region for E.164 normalisation (US, GB, …).
    #[arg(long)]
    pub default_region: Option<String>,
    /// Local SIP address to bind, IP:port.
    #[arg(long)]
    pub local_address: Option<String>,
    /// Serve the REST API on this address (IP:port) while the campaign runs.
    #[arg(long = "api")]
    pub api_listen: Option<String>,
    /// Lowest RTP port offered.
    #[arg(long)]
    pub rtp_port_min: Option<u16>,
    /// Highest RTP port offered.
    #[arg(long)]
    pub rtp_port_max: Option<u16>,
    /// User-Agent header.
    #[arg(long)]
    pub user_agent: Option<String>,
    /// Privacy header value (RFC 3323), e.g. id.
    #[arg(long)]
    pub privacy: Option<String>,
    /// Username for the trunk's digest challenges.
    #[arg(long)]
    pub auth_username: Option<String>,
    /// Password for the trunk's digest challenges.
    #[arg(long, env = "OUTDIAL_AUTH_PASSWORD", hide_env_values = true)]
    pub auth_password: Option<String>,
    /// AMD profile with its default parameters: default, asterisk or off.
    #[arg(long)]
    pub amd_profile: Option<String>,
    /// On a machine: hangup, voicemail or continue.
    #[arg(long, value_parser = parse_machine_action)]
    pub on_machine: Option<MachineAction>,
    /// On a human: continue, hangup or prompt.
    #[arg(long, value_parser = parse_human_action)]
    pub on_human: Option<HumanAction>,
    /// Seconds without RTP before a media_timeout event (0: never).
    #[arg(long)]
    pub media_timeout: Option<u64>,
}

fn parse_machine_action(s: &str) -> Result<MachineAction, String> {
    match s {
        "hangup" => Ok(MachineAction::Hangup),
        "voicemail" => Ok(MachineAction::Voicemail),
        "continue" => Ok(MachineAction::Continue),
        _ => Err(format!("{s:?}: expected hangup, voicemail or continue")),
    }
}

fn parse_human_action(s: &str) -> Result<HumanAction, String> {
    match s {
        "continue" => Ok(HumanAction::Continue),
        "hangup" => Ok(HumanAction::Hangup),
        "prompt" => Ok(HumanAction::Prompt),
        "queue" => Ok(HumanAction::Queue),
        "ivr" => Ok(HumanAction::Ivr),
        _ => Err(format!(
            "{s:?}: expected continue, hangup, prompt, queue or ivr"
        )),
    }
}

/// Reads and validates a campaign file, then applies overrides.
/// Errors: unreadable file, TOML syntax or unknown field (with its location), or a
/// setting out of range (named).
pub fn load(path: &Path, o: &Overrides) -> anyhow::Result<CampaignConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading campaign file {}", path.display()))?;
    let mut c =
        parse(&text, o).map_err(|e| anyhow::anyhow!("campaign file {}: {e}", path.display()))?;
    o.apply(&mut c);
    c.validate()?;
    Ok(c)
}

/// Parses a campaign file's text. A required field the file leaves out (`name`, `trunk`,
/// `caller_id`) may come from its flag instead. Errors: the TOML error with its line, reworded
/// where serde's words help nobody — a wrong type says what the field holds ("a number of
/// calls per second"), an unknown field names the nearest known one.
pub fn parse(text: &str, o: &Overrides) -> Result<CampaignConfig, String> {
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| e.to_string())?;
    let mut head = String::new();
    for (key, flag) in [
        ("name", &o.name),
        ("trunk", &o.trunk),
        ("caller_id", &o.caller_id),
    ] {
        if let Some(v) = flag.as_ref().filter(|_| !table.contains_key(key)) {
            head.push_str(&format!("{key} = {}\n", toml::Value::String(v.clone())));
        }
    }
    let full = format!("{head}{text}");
    toml::from_str(&full).map_err(|e| explain(&full, &e))
}

/// What a campaign field holds, for type errors (fields not listed get serde's wording made
/// plain: "a number", "a whole number", "true or false").
fn field_meaning(key: &str) -> Option<&'static str> {
    Some(match key {
        "cps" => "a number of calls per second (e.g. 5 or 0.5)",
        "max_concurrent" => "a whole number of calls",
        "max_attempts" => "a whole number of attempts",
        "ring_timeout" | "hold_time" | "failover_timeout" | "media_timeout" | "retry_after"
        | "max_wait" | "wrap_up" | "offer_timeout" => "a number of seconds",
        "priority" => "a whole number (higher is served first)",
        "start_at" | "stop_at" => {
            "an RFC 3339 date and time in quotes (e.g. \"2026-12-24T09:00:00+01:00\")"
        }
        "holidays" => "a list of dates in quotes (e.g. [\"2026-12-25\"])",
        _ => return None,
    })
}

/// serde's "invalid type: string \"fast\", expected f64" for campaign field `key`
/// (snake_case) in plain words: "`cps` must be a number of calls per second (e.g. 5 or 0.5),
/// not string \"fast\"" — the campaign file's errors and the API's alike. `None`: `msg` is
/// not a type error.
pub fn reword_type_error(key: Option<&str>, msg: &str) -> Option<String> {
    let rest = msg.strip_prefix("invalid type: ")?;
    let (got, expected) = rest.split_once(", expected ").unwrap_or((rest, ""));
    let plain = match expected {
        "f64" | "f32" => "a number",
        "u8" | "u16" | "u32" | "u64" | "usize" | "i32" | "i64" => "a whole number",
        "a boolean" => "true or false",
        other => other,
    };
    Some(match key {
        Some(k) => format!(
            "`{k}` must be {}, not {got}",
            field_meaning(k).unwrap_or(plain)
        ),
        None => format!("expected {plain}, not {got}"),
    })
}

/// Rewords a TOML/serde error (see [`parse`]), keeping its line and caret.
fn explain(text: &str, e: &toml::de::Error) -> String {
    let msg = e.message();
    let key = e.span().and_then(|s| {
        let line_start = text[..s.start].rfind('\n').map_or(0, |i| i + 1);
        let line = &text[line_start..];
        let line = line.split('\n').next().unwrap_or("");
        line.split_once('=')
            .map(|(k, _)| k.trim().trim_matches('"').to_string())
    });
    let better = if let Some(rest) = msg.strip_prefix("unknown field `") {
        let (field, known) = rest.split_once('`').unwrap_or((rest, ""));
        let names: Vec<&str> = known.split('`').skip(1).step_by(2).collect();
        let nearest = names
            .iter()
            .map(|n| (strsim::levenshtein(field, n), *n))
            .min()
            .filter(|(d, n)| *d <= 2.max(n.len() / 3));
        match nearest {
            Some((_, n)) => format!("unknown field `{field}`: did you mean `{n}`?"),
            None => format!(
                "unknown field `{field}` (the fields are listed in README.md, \"Campaign file\")"
            ),
        }
    } else if let Some(better) = reword_type_error(key.as_deref(), msg) {
        better
    } else {
        return e.to_string();
    };
    e.to_string().replace(msg, &better)
}

impl Overrides {
    /// Lays the flags given over `c` (`--trunk` replaces a trunk group; an unknown
    /// `--amd-profile` is reported by [`CampaignConfig::validate`]).
    pub fn apply(&self, c: &mut CampaignConfig) {
        let o = self;
        fn set<T: Clone>(field: &mut T, v: &Option<T>) {
            if let Some(v) = v {
                *field = v.clone();
            }
        }
        fn set_opt<T: Clone>(field: &mut Option<T>, v: &Option<T>) {
            if v.is_some() {
                *field = v.clone();
            }
        }
        set(&mut c.name, &o.name);
        if let Some(t) = &o.trunk {
            // --trunk replaces a trunk group from the file.
            c.trunk = t.clone();
            c.trunks.clear();
        }
        set_opt(&mut c.outbound_proxy, &o.outbound_proxy);
        set(&mut c.keepalive_interval, &o.keepalive_interval);
        set(&mut c.failover_timeout, &o.failover_timeout);
        set(&mut c.caller_id, &o.caller_id);
        set_opt(&mut c.caller_name, &o.caller_name);
        set_opt(&mut c.p_asserted_identity, &o.p_asserted_identity);
        set_opt(&mut c.from_host, &o.from_host);
        set(&mut c.cps, &o.cps);
        set(&mut c.max_concurrent, &o.max_concurrent);
        set(&mut c.ring_timeout, &o.ring_timeout);
        set(&mut c.hold_time, &o.hold_time);
        set_opt(&mut c.default_region, &o.default_region);
        set(&mut c.local_address, &o.local_address);
        set_opt(&mut c.api_listen, &o.api_listen);
        set(&mut c.rtp_port_min, &o.rtp_port_min);
        set(&mut c.rtp_port_max, &o.rtp_port_max);
        set(&mut c.user_agent, &o.user_agent);
        set_opt(&mut c.privacy, &o.privacy);
        set_opt(&mut c.auth_username, &o.auth_username);
        set_opt(&mut c.auth_password, &o.auth_password);
        if let Some(p) = &o.amd_profile {
            // An unknown name is reported by validate().
            c.amd = AmdConfig::named(p).unwrap_or(AmdConfig::Off);
            c.amd_profile_error = AmdConfig::named(p).is_none().then(|| p.clone());
        }
        set(&mut c.on_machine, &o.on_machine);
        set(&mut c.on_human, &o.on_human);
        set(&mut c.media_timeout, &o.media_timeout);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "name = \"x\"\ntrunk = \"sip:127.0.0.1:5080\"\n";

    #[test]
    fn a_required_field_missing_from_the_file_may_come_from_its_flag() {
        let none = Overrides::default();
        let e = parse(BASE, &none).unwrap_err();
        assert!(e.contains("missing field `caller_id`"), "{e}");
        let flag = Overrides {
            caller_id: Some("+14155550000".into()),
            ..Default::default()
        };
        let c = parse(BASE, &flag).unwrap();
        assert_eq!(c.caller_id, "+14155550000");
        // A value in the file is kept (the flag then overrides it in apply()).
        let c = parse(&format!("{BASE}caller_id = \"+1999\"\n"), &flag).unwrap();
        assert_eq!(c.caller_id, "+1999");
        // Quotes and backslashes in a flag stay data.
        let odd = Overrides {
            name: Some("a \"b\" \\c".into()),
            caller_id: Some("+1".into()),
            ..Default::default()
        };
        let c = parse("trunk = \"sip:127.0.0.1:5080\"\n", &odd).unwrap();
        assert_eq!(c.name, "a \"b\" \\c");
    }

    #[test]
    fn a_wrong_type_says_what_the_field_holds() {
        let text = format!("{BASE}caller_id = \"+1\"\ncps = \"fast\"\n");
        let e = parse(&text, &Overrides::default()).unwrap_err();
        assert!(
            e.contains(
                "`cps` must be a number of calls per second (e.g. 5 or 0.5), not string \"fast\""
            ),
            "{e}"
        );
        assert!(e.contains("line 4"), "the line is kept: {e}");
        assert!(!e.contains("f64"), "{e}");
        let text = format!("{BASE}caller_id = \"+1\"\nmax_concurrent = 2.5\n");
        let e = parse(&text, &Overrides::default()).unwrap_err();
        assert!(
            e.contains("`max_concurrent` must be a whole number of calls"),
            "{e}"
        );
    }

    #[test]
    fn an_unknown_field_names_the_nearest_one() {
        let text = format!("{BASE}caller_id = \"+1\"\ncpss = 5\n");
        let e = parse(&text, &Overrides::default()).unwrap_err();
        assert!(
            e.contains("unknown field `cpss`: did you mean `cps`?"),
            "{e}"
        );
        assert!(!e.contains("expected one of"), "not the 40 names: {e}");
        let text = format!("{BASE}caller_id = \"+1\"\nringtimeout = 5\n");
        let e = parse(&text, &Overrides::default()).unwrap_err();
        assert!(e.contains("did you mean `ring_timeout`?"), "{e}");
        let text = format!("{BASE}caller_id = \"+1\"\nzzzzzzzzzzz = 5\n");
        let e = parse(&text, &Overrides::default()).unwrap_err();
        assert!(e.contains("unknown field `zzzzzzzzzzz` (the fields"), "{e}");
    }

    #[test]
    fn overrides_apply_and_are_validated() {
        let mut c: CampaignConfig =
            toml::from_str("name = \"x\"\ntrunk = \"sip:127.0.0.1:5080\"\ncaller_id = \"+1415\"\n")
                .unwrap();
        c.validate().unwrap();
        Overrides {
            cps: Some(0.0),
            ..Default::default()
        }
        .apply(&mut c);
        let e = c.validate().unwrap_err().to_string();
        assert!(e.starts_with("cps:"), "{e}");
    }
}
