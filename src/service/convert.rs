//! Campaign settings between the API's JSON (camelCase members, as `callerId`) and the
//! campaign file's fields ([`CampaignConfig`], snake_case, as `caller_id`).

use serde_json::{Map, Value};

use crate::campaign::config::CampaignConfig;

/// Campaign settings that do not hold: the member at fault (camelCase, as the API names it)
/// and why. The API answers it as a 422 problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{detail}")]
pub struct Invalid {
    /// The member at fault (`cps`, `amd.profile`), if one is.
    pub field: Option<String>,
    /// What is wrong, for a person.
    pub detail: String,
}

impl Invalid {
    /// `field` is wrong: `detail`.
    pub fn new(field: &str, detail: impl Into<String>) -> Self {
        Self {
            field: Some(field.to_string()),
            detail: detail.into(),
        }
    }
}

/// `callerId` → `caller_id` (digits stay with their word: `rtpPortMin` → `rtp_port_min`).
pub fn camel_to_snake(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    for c in s.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// `caller_id` → `callerId`.
pub fn snake_to_camel(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut up = false;
    for c in s.chars() {
        if c == '_' {
            up = true;
        } else if up {
            out.push(c.to_ascii_uppercase());
            up = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// Renames every object member of `v`, recursively.
pub fn rename_keys(v: Value, f: &dyn Fn(&str) -> String) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| (f(&k), rename_keys(v, f)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(|v| rename_keys(v, f)).collect()),
        other => other,
    }
}

/// Lays `over` onto `base`: objects merge member by member, anything else replaces.
pub fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(slot) if slot.is_object() && v.is_object() => merge(slot, v),
                    _ => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, o) => *b = o,
    }
}

/// `T` (campaign settings, an IVR application) from its stored form (snake_case JSON).
/// Errors: [`Invalid`] naming the member at fault as the API spells it (camelCase), the
/// message's field names spelled so too.
pub fn from_settings<T: serde::de::DeserializeOwned>(settings: Value) -> Result<T, Invalid> {
    serde_path_to_error::deserialize(settings).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        // The path names the member at fault (for an unknown one, itself); at the top level
        // ("."), take the name from the message.
        let field = match inner.split('`').nth(1) {
            Some(f) if path == "." || path.is_empty() => f.to_string(),
            _ => path,
        };
        // A wrong type in the words the campaign file's errors use ("`cps` must be a
        // number of calls per second …").
        let leaf = field
            .rsplit('.')
            .next()
            .map(|l| l.split('[').next().unwrap_or(l));
        let inner = crate::overrides::reword_type_error(leaf, &inner).unwrap_or(inner);
        let field = field
            .split('.')
            .map(snake_to_camel)
            .collect::<Vec<_>>()
            .join(".");
        Invalid::new(&field, rename_in_message(&inner))
    })
}

/// The campaign settings from `settings` (snake_case JSON, the stored form) laid over the
/// service's defaults, validated. Errors: [`Invalid`] naming the field (camelCase).
pub fn campaign_config(defaults: &toml::Table, settings: Value) -> Result<CampaignConfig, Invalid> {
    let mut merged = serde_json::to_value(defaults).unwrap_or(Value::Object(Map::new()));
    merge(&mut merged, settings);
    let cfg: CampaignConfig = from_settings(merged)?;
    cfg.validate().map_err(|e| {
        // The whole chain ("trunks[main]: not a SIP URI: …"), as the CLI prints it.
        let msg = format!("{e:#}");
        let field = msg
            .split_once(':')
            .map(|(f, _)| f.trim().to_string())
            .filter(|f| !f.contains(' '))
            .unwrap_or_default();
        let field = field
            .split('.')
            .map(|p| snake_to_camel(p.split('[').next().unwrap_or(p)))
            .collect::<Vec<_>>()
            .join(".");
        let mut p = Invalid::new(&field, rename_in_message(&msg));
        if p.field.as_deref() == Some("") {
            p.field = None;
        }
        p
    })?;
    Ok(cfg)
}

/// Field names in a message (`` `caller_id` ``, `caller_id:`) as the API spells them.
fn rename_in_message(msg: &str) -> String {
    msg.split('`')
        .enumerate()
        .map(|(i, part)| {
            if i % 2 == 1 {
                snake_to_camel(part)
            } else {
                part.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("`")
}

/// The API's campaign body (camelCase, `callLists` and `name` included) → (name, stored
/// settings as snake_case JSON, call list ids). Errors: [`Invalid`] naming the member.
pub fn split_body(body: Value) -> Result<(String, Value, Vec<i64>), Invalid> {
    let Value::Object(mut m) = body else {
        return Err(Invalid {
            field: None,
            detail: "the body must be a JSON object".into(),
        });
    };
    for ro in ["id", "state", "createdAt", "updatedAt"] {
        m.remove(ro);
    }
    let lists = match m.remove("callLists") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| v.as_i64().filter(|n| *n > 0))
            .collect::<Option<Vec<i64>>>()
            .ok_or_else(|| Invalid::new("callLists", "an array of call list ids"))?,
        Some(_) => return Err(Invalid::new("callLists", "an array of call list ids")),
    };
    let name = match m.get("name") {
        Some(Value::String(s)) if !s.trim().is_empty() && s.len() <= 100 => s.clone(),
        _ => {
            return Err(Invalid::new(
                "name",
                "a name of 1 to 100 characters is required",
            ));
        }
    };
    let settings = rename_keys(Value::Object(m), &camel_to_snake);
    Ok((name, settings, lists))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retry_rule_takes_the_disposition_in_either_spelling() {
        for d in ["noAnswer", "no_answer"] {
            let (_, settings, _) = split_body(serde_json::json!({
                "name": "r", "callerId": "+14155550000", "trunk": "sip:127.0.0.1",
                "rescheduleRules": [{"disposition": d, "retryAfter": 60, "maxAttempts": 3}]
            }))
            .unwrap();
            let cfg = campaign_config(&toml::Table::new(), settings).unwrap();
            assert_eq!(
                cfg.reschedule_rules[0].disposition,
                crate::events::disposition::Disposition::NoAnswer,
                "{d}"
            );
        }
        // An unknown one is refused, and what the message offers is accepted.
        let (_, settings, _) = split_body(serde_json::json!({
            "name": "r", "callerId": "+14155550000", "trunk": "sip:127.0.0.1",
            "rescheduleRules": [{"disposition": "nobody", "retryAfter": 60, "maxAttempts": 3}]
        }))
        .unwrap();
        let e = campaign_config(&toml::Table::new(), settings).unwrap_err();
        assert!(e.detail.contains("noAnswer"), "{e:?}");
    }

    #[test]
    fn an_ivr_and_a_schedule_in_camel_case_become_campaign_settings() {
        let body = serde_json::json!({
            "name": "ivr", "callerId": "+14155550000", "trunk": "sip:127.0.0.1",
            "onHuman": "ivr", "startAt": "2026-12-24T09:00:00+01:00",
            "activePeriod": {"startTime": "09:00", "endTime": "17:00", "timeZone": "UTC",
                             "holidays": ["2026-12-25"]},
            "ivr": {"nodes": {"main": {"prompt": "/p/menu.wav", "retryPrompt": "/p/sorry.wav",
                "choices": {"2": {"action": "record", "maxSeconds": 30},
                            "0": {"action": "goto", "node": "more_info"}}},
                "more_info": {"onTimeout": {"action": "hangup"}}}}
        });
        let (_, settings, _) = split_body(body).unwrap();
        let cfg = campaign_config(&toml::Table::new(), settings).unwrap();
        let ivr = cfg.ivr.unwrap();
        let main = &ivr.nodes["main"];
        assert_eq!(
            main.retry_prompt.as_deref(),
            Some(std::path::Path::new("/p/sorry.wav"))
        );
        assert_eq!(
            main.choices["2"],
            crate::ivr::IvrAction::Record {
                prompt: None,
                max_seconds: 30
            }
        );
        assert!(ivr.nodes.contains_key("more_info"));
        assert_eq!(cfg.active_period.unwrap().holidays, ["2026-12-25"]);
        // A bad one is refused naming the place.
        let (_, settings, _) = split_body(serde_json::json!({
            "name": "x", "callerId": "+1", "trunk": "sip:127.0.0.1", "onHuman": "ivr",
            "ivr": {"nodes": {"main": {"choices": {"1": {"action": "goto", "node": "nowhere"}}}}}
        }))
        .unwrap();
        let e = campaign_config(&toml::Table::new(), settings).unwrap_err();
        assert!(e.detail.contains("goto \"nowhere\""), "{e:?}");
    }

    #[test]
    fn names_round_trip() {
        for s in [
            "caller_id",
            "rtp_port_min",
            "max_concurrent",
            "on_human",
            "name",
        ] {
            assert_eq!(camel_to_snake(&snake_to_camel(s)), s);
        }
        assert_eq!(snake_to_camel("reschedule_rules"), "rescheduleRules");
    }

    #[test]
    fn errors_name_the_api_field() {
        let mut d = toml::Table::new();
        d.insert("trunk".into(), "sip:127.0.0.1:5080".into());
        let (_, v, _) = split_body(serde_json::json!({
            "name": "x", "callerId": "+1415", "cps": "fast"
        }))
        .unwrap();
        let p = campaign_config(&d, v).unwrap_err();
        assert_eq!(p.field.as_deref(), Some("cps"), "{p:?}");
        let (_, v, _) =
            split_body(serde_json::json!({"name": "x", "callerId": "+1", "bogusThing": 1}))
                .unwrap();
        let p = campaign_config(&d, v).unwrap_err();
        assert_eq!(p.field.as_deref(), Some("bogusThing"), "{p:?}");
        let (_, v, _) =
            split_body(serde_json::json!({"name": "x", "callerId": "+1", "maxConcurrent": 0}))
                .unwrap();
        let p = campaign_config(&d, v).unwrap_err();
        assert_eq!(p.field.as_deref(), Some("maxConcurrent"), "{p:?}");
        // A bad trunk URI: the reason, not only the trunk's name.
        let (_, v, _) = split_body(serde_json::json!({
            "name": "x", "callerId": "+1",
            "trunks": [{"name": "main", "uri": "http://example.com"}]
        }))
        .unwrap();
        let p = campaign_config(&toml::Table::new(), v).unwrap_err();
        assert_eq!(p.field.as_deref(), Some("trunks"), "{p:?}");
        assert!(
            p.detail.starts_with("trunks[main]: ") && p.detail.len() > "trunks[main]: ".len() + 5,
            "{p:?}"
        );
        let (_, v, _) = split_body(
            serde_json::json!({"name": "x", "callerId": "+1", "amd": {"profile": "nope"}}),
        )
        .unwrap();
        assert!(campaign_config(&d, v).is_err());
        assert_eq!(
            split_body(serde_json::json!({"callerId": "+1"}))
                .unwrap_err()
                .field
                .as_deref(),
            Some("name")
        );
    }
}
