//! The OpenAPI 3.1 document of the API (`GET /v1/openapi.json`), built here beside the routes
//! it describes; `tests/api_serve.rs` checks that it lists exactly the routes the router
//! serves, and the CI's property-based run (schemathesis) drives every operation from it.

use serde_json::{Value, json};

use crate::notify::webhook::EVENT_TYPES;

fn problem_ref() -> Value {
    json!({"$ref": "#/components/responses/Problem"})
}

/// An operation: `summary`, `role` (who may call it; `None`: no token), parameters, request
/// body schema (JSON unless given), and its success response.
fn op(
    id: &str,
    summary: &str,
    role: Option<&str>,
    params: Vec<Value>,
    body: Option<Value>,
    ok: (&str, Value),
    errors: &[&str],
) -> Value {
    let mut responses = serde_json::Map::new();
    responses.insert(ok.0.to_string(), ok.1);
    let mut codes: Vec<&str> = errors.to_vec();
    if role.is_some() {
        codes.extend(["401", "403"]);
    }
    for c in codes {
        responses.insert(c.to_string(), problem_ref());
    }
    let mut o = json!({
        "operationId": id,
        "summary": summary,
        "parameters": params,
        "responses": responses,
    });
    match role {
        Some(r) => {
            o["security"] = json!([{"bearer": []}]);
            o["description"] = json!(format!("Role: {r}."));
        }
        None => o["security"] = json!([]),
    }
    if let Some(b) = body {
        o["requestBody"] = if b.get("content").is_some() {
            b
        } else {
            json!({"required": true, "content": {"application/json": {"schema": b}}})
        };
    }
    o
}

fn path_param(name: &str, schema: Value) -> Value {
    json!({"name": name, "in": "path", "required": true, "schema": schema})
}

fn query(name: &str, schema: Value) -> Value {
    json!({"name": name, "in": "query", "required": false, "schema": schema})
}

fn json_ok(code: &str, schema: Value) -> (&str, Value) {
    (
        code,
        json!({"description": "OK", "content": {"application/json": {"schema": schema}}}),
    )
}

fn r(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

/// The document.
pub fn document() -> Value {
    let mut d = paths_document();
    // Links let a stateful client (schemathesis) follow a created id into the operations on it.
    let link = |op: &str| json!({"operationId": op, "parameters": {"id": "$response.body#/id"}});
    let created = |d: &mut Value, path: &str, ops: &[&str]| {
        let links: serde_json::Map<String, Value> =
            ops.iter().map(|o| (o.to_string(), link(o))).collect();
        d["paths"][path]["post"]["responses"]["201"]["links"] = Value::Object(links);
    };
    d["paths"]["/v1/dnc"]["get"] = op(
        "listDnc",
        "The do-not-call list, a page at a time (number order)",
        Some("supervisor+"),
        vec![
            query("after", json!({"type": "string"})),
            query(
                "limit",
                json!({"type": "integer", "minimum": 1, "maximum": 10000}),
            ),
        ],
        None,
        json_ok(
            "200",
            json!({"type": "object", "properties": {
                "numbers": {"type": "array", "items": {"type": "object", "properties": {
                    "number": {"type": "string"}, "source": {"type": "string"}, "addedAt": {"type": "string"}}}},
                "next": {"type": ["string", "null"]}}}),
        ),
        &["422"],
    );
    d["paths"]["/v1/dnc/{number}"]["delete"] = op(
        "deleteDnc",
        "Take a number off the do-not-call list",
        Some("admin+"),
        vec![path_param("number", json!({"type": "string"}))],
        None,
        ("204", json!({"description": "removed"})),
        &["404", "422"],
    );
    let list_id = path_param(
        "id",
        json!({"type": "integer", "format": "int64", "minimum": 1}),
    );
    let number = path_param("number", json!({"type": "string"}));
    let numbers_item = json!({"type": "object", "required": ["number"], "additionalProperties": false,
        "properties": {"number": {"type": "string"}, "attributes": {"type": "object"}}});
    d["paths"]["/v1/call-lists/{id}/numbers"] = json!({
        "get": op("listCallListNumbers", "A call list's numbers, a page at a time", Some("supervisor+"),
            vec![list_id.clone(), query("after", json!({"type": "integer"})),
                 query("limit", json!({"type": "integer", "minimum": 1, "maximum": 10000}))], None,
            json_ok("200", json!({"type": "object", "properties": {
                "numbers": {"type": "array", "items": {"type": "object"}}, "next": {"type": ["integer", "null"]}}})),
            &["404", "422"]),
        "post": op("appendCallListNumbers", "Append numbers to a call list", Some("admin+"),
            vec![list_id.clone()],
            Some(json!({"type": "object", "required": ["numbers"], "additionalProperties": false, "properties": {
                "defaultRegion": {"type": "string"}, "numbers": {"type": "array", "items": numbers_item}}})),
            json_ok("200", json!({"type": "object", "properties": {
                "added": {"type": "integer"}, "alreadyPresent": {"type": "integer"}, "errors": {"type": "array"}}})),
            &["400", "404", "415", "422"])});
    d["paths"]["/v1/call-lists/{id}/numbers/{number}"] = json!({
        "put": op("editCallListNumber", "Replace a number's attributes", Some("admin+"),
            vec![list_id.clone(), number.clone()],
            Some(json!({"type": "object", "required": ["attributes"], "additionalProperties": false,
                "properties": {"attributes": {"type": "object"}}})),
            ("204", json!({"description": "replaced"})), &["400", "404", "415", "422"]),
        "delete": op("deleteCallListNumber", "Take a number off a call list", Some("admin+"),
            vec![list_id, number], None, ("204", json!({"description": "removed"})), &["404", "422"])});
    d["paths"]["/v1/calls"]["post"] = op(
        "placeCall",
        "One call on demand: a campaign of one",
        Some("admin+"),
        vec![],
        Some(json!({"type": "object", "required": ["to"],
            "properties": {"to": {"type": "string", "description": "the number to call"},
                           "callerId": {"type": "string", "description": "the from number"},
                           "defaultRegion": {"type": "string"}},
            "description": "to, and any campaign setting of CampaignBody in camelCase (trunk, amd, onMachine, holdTime, webhook, …) but name and callLists, which the call sets"})),
        json_ok(
            "201",
            json!({"type": "object", "properties": {
                "campaignId": {"type": "integer"}, "campaign": {"type": "string"},
                "number": {"type": "string"}, "callId": {"type": ["string", "null"]}}}),
        ),
        &["400", "409", "415", "422"],
    );
    more_campaign_settings(&mut d["components"]["schemas"]["CampaignBody"]["properties"]);
    d["paths"]["/v1/me"] = json!({"get": op("me", "The token's own role and agent", Some("any token"), vec![], None,
        json_ok("200", json!({"type": "object", "required": ["role", "agent"], "properties": {
            "role": {"type": "string", "enum": ["agent", "supervisor", "admin", "owner"]},
            "agent": {"type": ["string", "null"]}}})), &[])});
    d["paths"]["/v1/agents/{id}/call"] = json!({"get": op("agentCall", "The agent's current or last customer call, with the lead's attributes and the campaign's dispositions (the soft console)",
        Some("its agent, supervisor+"), vec![path_param("id", json!({"type": "string"}))], None,
        json_ok("200", json!({"type": "object", "properties": {
            "agent": {"type": "string"}, "state": {"type": "string"}, "callId": {"type": "string"},
            "live": {"type": "boolean"}, "number": {"type": "string"}, "leadId": {"type": "integer"},
            "campaignId": {"type": "integer"}, "campaign": {"type": ["string", "null"]},
            "attributes": {"type": "object"}, "dispositions": {"type": "array", "items": {"type": "string"}},
            "mandatoryDisposition": {"type": "boolean"}, "awaitingDisposition": {"type": "boolean"},
            "agentDisposition": {"type": ["string", "null"]}}})), &["404", "409"])});
    d["paths"]["/v1/stats/series"] = json!({"get": op("statsSeries", "Attempts per minute over the last minutes (the monitor's charts)", Some("supervisor+"),
        vec![query("campaignId", json!({"type": "integer", "format": "int64", "minimum": 1})),
             query("minutes", json!({"type": "integer", "minimum": 1, "maximum": 1440}))], None,
        json_ok("200", json!({"type": "object", "properties": {"from": {"type": "string"},
            "points": {"type": "array", "items": {"type": "object", "properties": {
                "minute": {"type": "string"}, "attempts": {"type": "integer"},
                "answered": {"type": "integer"}, "ended": {"type": "integer"}}}}}})), &["400", "422"])});
    d["components"]["schemas"]["Stats"]["properties"]["pacing"] = json!({"type": "object",
        "description": "the pacer's live figures while this process dials the campaign with an endpoint",
        "properties": {"abandonRate": {"type": "number"}, "dialRatio": {"type": "number"}}});
    d["paths"]["/v1/ivr"] = ivr_paths().0;
    d["paths"]["/v1/ivr/{name}"] = ivr_paths().1;
    created(&mut d, "/v1/call-lists", &["getCallList", "deleteCallList"]);
    created(
        &mut d,
        "/v1/campaigns",
        &[
            "getCampaign",
            "updateCampaign",
            "deleteCampaign",
            "controlCampaign",
            "campaignStats",
            "campaignCdr",
        ],
    );
    d
}

fn paths_document() -> Value {
    let id = || json!({"type": "integer", "format": "int64", "minimum": 1});
    let agent_id = path_param("id", json!({"type": "string"}));
    let campaign_id = path_param("id", id());
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "outdial",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Outbound dialer: call lists, campaigns, calls, agents, live events. See docs/api.md."
        },
        "servers": [{"url": "/"}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "responses": {
                "Problem": {
                    "description": "RFC 9457 problem details",
                    "content": {"application/problem+json": {"schema": r("Problem")}}
                }
            },
            "schemas": with_call_controls(schemas()),
        },
        "paths": {
            "/v1/health": {"get": op("health", "Liveness", None, vec![], None,
                json_ok("200", json!({"type": "object", "properties": {"status": {"type": "string"}}})), &[])},
            "/v1/openapi.json": {"get": op("openapi", "This document", None, vec![], None,
                json_ok("200", json!({"type": "object"})), &[])},
            "/metrics": {"get": op("metrics", "Prometheus metrics (text format)", None, vec![], None,
                ("200", json!({"description": "OK", "content": {"text/plain": {"schema": {"type": "string"}}}})), &[])},
            "/v1/events": {"get": op("events", "Live events (Server-Sent Events)", Some("agent (own agent's events), supervisor+"),
                vec![query("campaignId", id()), query("callId", json!({"type": "string"})), query("agent", json!({"type": "string"}))],
                None,
                ("200", json!({"description": "text/event-stream of LiveEvent envelopes", "content": {"text/event-stream": {"schema": {"type": "string"}}}})),
                &["400", "404"])},
            "/v1/events/ws": {"get": op("eventsWs", "Live events over a WebSocket (one text message per envelope)", Some("agent (own agent's events), supervisor+"),
                vec![query("campaignId", id()), query("callId", json!({"type": "string"})), query("agent", json!({"type": "string"}))],
                None, ("101", json!({"description": "Switching Protocols (WebSocket)"})), &["400", "404"])},
            "/v1/agents": {
                "get": op("listAgents", "Agents and their states (stored agents no running campaign has: offline)", Some("agent (itself), supervisor+"), vec![], None,
                    json_ok("200", json!({"type": "array", "items": r("Agent")})), &["409"]),
                "post": op("createAgent", "Create an agent (its password is kept as digest HA1)", Some("admin+"), vec![], Some(r("NewAgentBody")),
                    json_ok("201", json!({"type": "object", "properties": {"id": {"type": "string"}, "realm": {"type": "string"}}})),
                    &["400", "409", "415", "422"]),
            },
            "/v1/agents/{id}/password": {"put": op("setAgentPassword", "Change an agent's password", Some("admin+, or the agent itself"),
                vec![agent_id.clone()], Some(r("PasswordBody")), ("204", json!({"description": "Changed"})), &["400", "404", "415", "422"])},
            "/v1/queues": {"get": op("queues", "The ACD queue: waiting calls and agents by state", Some("supervisor+"), vec![], None,
                json_ok("200", json!({"type": "array", "items": {"type": "object"}})), &["409"])},
            "/v1/stats": {"get": op("stats", "Statistics over every campaign", Some("supervisor+"), vec![], None,
                json_ok("200", r("Stats")), &[])},
            "/v1/agents/{id}": {"get": op("getAgent", "One agent", Some("its agent, supervisor+"), vec![agent_id.clone()], None,
                json_ok("200", r("Agent")), &["404", "409"])},
            "/v1/agents/{id}/state": {"put": op("setAgentState", "Pause or unpause an agent", Some("its agent, supervisor+"),
                vec![agent_id.clone()], Some(r("AgentStateBody")), json_ok("200", r("Agent")), &["400", "404", "409", "415", "422"])},
            "/v1/agents/{id}/disposition": {"put": op("setDisposition", "Set the disposition of the agent's call", Some("its agent, supervisor+"),
                vec![agent_id], Some(r("DispositionBody")), json_ok("200", r("Agent")), &["400", "404", "409", "415", "422"])},
            "/v1/agents/{id}/next-lead": {"post": op("nextLead", "Preview dialling: the agent's next lead, called at once", Some("its agent, supervisor+"),
                vec![path_param("id", json!({"type": "string"}))],
                Some(json!({"required": true, "content": {"application/json": {"schema": {"type": "object", "additionalProperties": false,
                    "properties": {"campaignId": {"type": "integer", "minimum": 1}}}}}})),
                json_ok("200", json!({"type": "object", "properties": {"campaignId": {"type": "integer"}, "leadId": {"type": "integer"},
                    "number": {"type": "string"}, "attributes": {"type": "object"}, "callId": {"type": "string"}, "attemptNo": {"type": "integer"}}})),
                &["400", "404", "409", "415", "422"])},
            "/v1/call-lists": {
                "get": op("listCallLists", "Call lists", Some("supervisor+"), vec![], None,
                    json_ok("200", json!({"type": "array", "items": r("CallList")})), &[]),
                "post": op("createCallList", "Create a call list (JSON, or CSV with ?name=)", Some("admin+"),
                    vec![query("name", json!({"type": "string"})), query("defaultRegion", json!({"type": "string"}))],
                    Some(json!({"required": true, "content": {
                        "application/json": {"schema": r("CallListBody")},
                        "text/csv": {"schema": {"type": "string"}}
                    }})),
                    json_ok("201", r("CreatedCallList")), &["400", "415", "422"]),
            },
            "/v1/call-lists/{id}": {
                "get": op("getCallList", "One call list", Some("supervisor+"), vec![path_param("id", id())], None,
                    json_ok("200", r("CallList")), &["404"]),
                "delete": op("deleteCallList", "Delete a call list", Some("admin+"), vec![path_param("id", id())], None,
                    ("204", json!({"description": "Deleted"})), &["404", "409"]),
            },
            "/v1/campaigns": {
                "get": op("listCampaigns", "Campaigns", Some("supervisor+"), vec![], None,
                    json_ok("200", json!({"type": "array", "items": r("Campaign")})), &[]),
                "post": op("createCampaign", "Create a draft campaign", Some("admin+"), vec![], Some(r("CampaignBody")),
                    json_ok("201", r("Campaign")), &["400", "409", "415", "422"]),
            },
            "/v1/campaigns/{id}": {
                "get": op("getCampaign", "One campaign", Some("supervisor+"), vec![campaign_id.clone()], None,
                    json_ok("200", r("Campaign")), &["404"]),
                "put": op("updateCampaign", "Replace a draft's settings", Some("admin+"), vec![campaign_id.clone()], Some(r("CampaignBody")),
                    json_ok("200", r("Campaign")), &["400", "404", "409", "415", "422"]),
                "delete": op("deleteCampaign", "Delete a campaign that never dialled", Some("admin+"), vec![campaign_id.clone()], None,
                    ("204", json!({"description": "Deleted"})), &["404", "409"]),
            },
            "/v1/campaigns/{id}/control": {"put": op("controlCampaign", "start, pause, unpause, reload, remove, recycle", Some("supervisor+"),
                vec![campaign_id.clone()], Some(r("ControlBody")),
                json_ok("200", json!({"type": "object", "properties": {"id": id(), "state": {"type": "string"}}})),
                &["400", "404", "409", "415", "422"])},
            "/v1/campaigns/{id}/stats": {"get": op("campaignStats", "Campaign statistics", Some("supervisor+"), vec![campaign_id.clone()], None,
                json_ok("200", r("Stats")), &["404"])},
            "/v1/campaigns/{id}/events": {"get": op("campaignEvents", "The campaign's own events (auto_paused, auto_resumed, schedule_ended)", Some("supervisor+"), vec![campaign_id.clone()], None,
                json_ok("200", json!({"type": "array", "items": {"type": "object", "properties": {
                    "type": {"type": "string", "enum": ["auto_paused", "auto_resumed", "schedule_ended"]}, "at": {"type": "string"},
                    "reason": {"type": "string"}, "calls_waiting": {"type": "integer"}, "threshold": {"type": "integer"},
                    "stop_at": {"type": "string", "format": "date-time"}, "leads_left": {"type": "integer"}}}})), &["404"])},
            "/v1/campaigns/{id}/cdr": {"get": op("campaignCdr", "CDRs as CSV", Some("supervisor+"), vec![campaign_id], None,
                ("200", json!({"description": "CSV", "content": {"text/csv": {"schema": {"type": "string"}}}})), &["404"])},
            "/v1/dnc": {"post": op("addDnc", "Add numbers to the do-not-call list", Some("admin+"), vec![],
                Some(json!({"type": "object", "required": ["numbers"], "additionalProperties": false,
                    "properties": {"numbers": {"type": "array", "items": {"type": "string"}}, "defaultRegion": {"type": "string"}}})),
                json_ok("200", json!({"type": "object", "properties": {"added": {"type": "integer"}, "errors": {"type": "array"}}})),
                &["400", "415", "422"])},
            "/v1/dnc/{number}": {"get": op("getDnc", "Is a number on the do-not-call list", Some("supervisor+"),
                vec![path_param("number", json!({"type": "string"}))], None,
                json_ok("200", json!({"type": "object", "properties": {"number": {"type": "string"}, "listed": {"type": "boolean"}}})),
                &["422"])},
            "/v1/calls": {"get": op("listCalls", "Calls, live and finished", Some("supervisor+"),
                vec![query("campaignId", id()), query("status", json!({"type": "string", "enum": ["live", "finished"]})),
                     query("disposition", json!({"type": "string"})),
                     query("limit", json!({"type": "integer", "minimum": 1, "maximum": 1000})),
                     query("offset", json!({"type": "integer", "minimum": 0}))],
                None, json_ok("200", json!({"type": "array", "items": r("Call")})), &["400", "422"])},
            "/v1/calls/{callId}": {"get": op("getCall", "A call with its event timeline, its DIALER.SYNC (`sync`) and recording link", Some("supervisor+"),
                vec![path_param("callId", json!({"type": "string"}))], None, json_ok("200", r("Call")), &["404"])},
            "/v1/calls/{callId}/recording": {"get": op("getCallRecording", "The call's recording: stereo WAV, customer left, agent right (single byte ranges)", Some("supervisor+"),
                vec![path_param("callId", json!({"type": "string"})),
                     json!({"name": "Range", "in": "header", "required": false, "schema": {"type": "string"}, "description": "bytes=a-b, bytes=a-, bytes=-n"})],
                None,
                ("200", json!({"description": "The WAV file (206 with a Range)", "content": {"audio/wav": {"schema": {"type": "string", "format": "binary"}}}})),
                &["404", "416"])},
            "/v1/agents/{id}/call/{action}": {"post": op("callControl", "A control on the agent's live call (docs/acd.md)", Some("its agent, supervisor+"),
                vec![path_param("id", json!({"type": "string"})), path_param("action", json!({"type": "string", "enum": crate::api::CALL_CONTROLS}))],
                Some(json!({"required": false, "content": {"application/json": {"schema": r("CallControlBody")}}})),
                json_ok("200", r("CallControl")), &["400", "404", "409", "415", "422"])},
        }
    })
}

/// The campaign settings `CampaignBody` lists beside its main ones: the trunk and SIP identity,
/// the network and media settings, with the numeric ranges of `CampaignConfig::RANGES`.
fn more_campaign_settings(props: &mut Value) {
    let Some(m) = props.as_object_mut() else {
        return;
    };
    let text = |d: &str| json!({"type": "string", "description": d});
    for (k, d) in [
        ("trunk", "sip:host[:port][;transport=udp|tcp] (or trunks)"),
        (
            "outboundProxy",
            "sip:host[:port];lr for every trunk without its own",
        ),
        ("callerName", "display name in From"),
        ("pAssertedIdentity", "P-Asserted-Identity URI (RFC 3325)"),
        ("fromHost", "host part of the From URI"),
        ("privacy", "Privacy header (RFC 3323), e.g. id"),
        ("authUsername", "the trunk account for digest challenges"),
        (
            "defaultRegion",
            "ISO 3166 region for national numbers (US, GB)",
        ),
        ("localAddress", "IP:port to bind (port 0: any)"),
        (
            "advertisedAddress",
            "the IP written in Via, Contact and SDP",
        ),
        ("apiListen", "IP:port of the run's own API (outdial run)"),
        ("userAgent", "User-Agent header"),
        ("voicemailFile", "WAV on the server: the voicemail message"),
        ("promptFile", "WAV on the server: the prompt for humans"),
    ] {
        m.insert(k.into(), text(d));
    }
    m.insert(
        "authPassword".into(),
        json!({"type": "string", "writeOnly": true, "description": "never stored or shown"}),
    );
    for (field, lo, hi, unit) in crate::campaign::config::CampaignConfig::RANGES {
        if field.contains('.') {
            continue;
        }
        let name = crate::service::convert::snake_to_camel(field);
        if !m.contains_key(&name) {
            m.insert(
                name,
                json!({"type": "number", "minimum": lo, "maximum": hi, "description": unit}),
            );
        }
    }
    m.insert(
        "priority".into(),
        json!({"type": "integer", "description": "among campaigns sharing agents, higher first"}),
    );
    for (k, lo) in [("rtpPortMin", 1024), ("rtpPortMax", 1025)] {
        m.insert(
            k.into(),
            json!({"type": "integer", "minimum": lo, "maximum": 65535}),
        );
    }
    m.insert(
        "trunks".into(),
        json!({"type": "array", "items": {"type": "object"}, "description": "a trunk group (docs/trunks.md)"}),
    );
    m.insert(
        "endpoint".into(),
        json!({"type": "object", "description": "pacing (docs/pacing.md)"}),
    );
}

/// `/v1/ivr` and `/v1/ivr/{name}`: IVR applications kept by name (docs/ivr.md).
fn ivr_paths() -> (Value, Value) {
    let name = path_param(
        "name",
        json!({"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"}),
    );
    let app = json!({"allOf": [r("IvrApp"), {"type": "object", "properties": {
        "name": {"type": "string"}, "createdAt": {"type": "string"}, "updatedAt": {"type": "string"}}}]});
    let mut one = json!({
            "get": op("getIvrApp", "An IVR application", Some("supervisor+"), vec![name.clone()], None,
                json_ok("200", app.clone()), &["404"]),
            "put": op("putIvrApp", "Create (201) or replace (200) an IVR application", Some("admin+"),
                vec![name.clone()], Some(r("IvrApp")), json_ok("200", app.clone()), &["400", "404", "415", "422"]),
            "delete": op("deleteIvrApp", "Delete an IVR application (campaigns keep their copy)", Some("admin+"),
                vec![name], None, ("204", json!({"description": "deleted"})), &["404"])});
    one["put"]["responses"]["201"] = json_ok("201", app.clone()).1;
    (
        json!({"get": op("listIvrApps", "IVR applications", Some("supervisor+"), vec![], None,
            json_ok("200", json!({"type": "array", "items": app})), &[])}),
        one,
    )
}

/// `schemas` with the agent call controls' body and answer, and the campaign's recording
/// settings.
fn with_call_controls(mut schemas: Value) -> Value {
    let s = |t: &str| json!({"type": t});
    let body = &mut schemas["CampaignBody"]["properties"];
    body["recording"] = json!({"type": "string", "enum": ["off", "all", "agent_calls"],
        "description": "call recording: stereo WAV per call (customer left, agent right) in recordingsDir"});
    body["mediaTimeoutAction"] = json!({"type": "string", "enum": ["event", "hangup"],
        "description": "after mediaTimeout seconds without RTP: the event only, or then BYE (not while on hold)"});
    body["recordingRetentionDays"] = json!({"type": "integer", "minimum": 0,
        "description": "days a call recording is kept (0: until deleted by hand)"});
    schemas["CallControlBody"] = json!({"type": "object", "additionalProperties": false, "properties": {
        "tags": {"type": "array", "maxItems": 20, "items": {"type": "string", "minLength": 1, "maxLength": 64},
            "description": "tag: the tags to add"},
        "target": {"type": "string", "maxLength": 256,
            "description": "transfer, warm_transfer: a number, a sip: URI or agent:ID (another agent)"}}});
    schemas["CallControl"] = json!({"type": "object", "required": ["call_id", "held", "muted", "recording", "tags"],
        "properties": {"call_id": s("string"), "held": s("boolean"), "muted": s("boolean"),
            "recording": s("boolean"), "tags": {"type": "array", "items": s("string")}}});
    schemas
}

fn schemas() -> Value {
    let s = |t: &str| json!({"type": t});
    let opt = |t: &str| json!({"type": [t, "null"]});
    let hhmm = json!({"type": "string", "pattern": "^[0-2][0-9]:[0-5][0-9]$"});
    let active_period = json!({"type": "object", "required": ["startTime", "endTime", "timeZone"],
        "additionalProperties": false, "properties": {
        "startTime": hhmm, "endTime": hhmm,
        "weekDays": {"type": "array", "items": {"type": "integer", "minimum": 1, "maximum": 7}},
        "timeZone": s("string"), "leadTimeZoneAttribute": s("string"),
        "holidays": {"type": "array", "maxItems": 1000, "items": {"type": "string", "format": "date"}}}});
    let prompt = json!({"type": "string", "description": "WAV file on the server: 8 kHz mono, 16-bit PCM or G.711"});
    let action = json!({"type": "object", "required": ["action"], "additionalProperties": false,
        "description": "queue | record (prompt, maxSeconds 1-600) | dnc (prompt) | hangup (prompt) | transfer (to, prompt) | callback (afterSeconds, prompt) | goto (node)",
        "properties": {
            "action": {"type": "string", "enum": ["queue", "record", "dnc", "hangup", "transfer", "callback", "goto"]},
            "afterSeconds": {"type": "integer", "minimum": 0, "maximum": 86400},
            "prompt": prompt, "maxSeconds": {"type": "integer", "minimum": 1, "maximum": 600},
            "to": {"type": "string", "description": "a number (through the trunk) or a SIP URI"},
            "node": s("string")}});
    let ivr_app = json!({"type": "object", "required": ["nodes"], "additionalProperties": false,
        "description": "An IVR application (docs/ivr.md): run on humans when onHuman is ivr",
        "properties": {
            "start": {"type": "string", "default": "main"},
            "nodes": {"type": "object", "minProperties": 1, "maxProperties": 200,
                "additionalProperties": {"type": "object", "additionalProperties": false, "properties": {
                    "prompt": prompt,
                    "choices": {"type": "object", "propertyNames": {"pattern": "^[0-9*#A-D]$"}, "additionalProperties": action},
                    "timeout": {"type": "number", "minimum": 0.5, "maximum": 60},
                    "retries": {"type": "integer", "minimum": 0, "maximum": 10},
                    "retryPrompt": prompt, "onTimeout": action}}}}});
    let mut call_props = serde_json::Map::new();
    for (k, t) in [
        ("callId", "string"),
        ("number", "string"),
        ("status", "string"),
        ("startedAt", "string"),
    ] {
        call_props.insert(k.into(), s(t));
    }
    for k in ["campaignId", "leadId", "attemptNo"] {
        call_props.insert(k.into(), s("integer"));
    }
    for (k, t) in [
        ("sipStatus", "integer"),
        ("q850Cause", "integer"),
        ("reasonPhrase", "string"),
        ("disposition", "string"),
        ("hangupBy", "string"),
        ("detail", "string"),
        ("agentDisposition", "string"),
        ("ringingAt", "string"),
        ("answeredAt", "string"),
        ("endedAt", "string"),
    ] {
        call_props.insert(k.into(), opt(t));
    }
    call_props.insert(
        "events".into(),
        json!({"type": "array", "items": {"type": "object", "properties": {"type": s("string"), "at": s("string")}}}),
    );
    json!({
        "Problem": {"type": "object", "required": ["type", "title", "status", "detail"], "properties": {
            "type": s("string"), "title": s("string"), "status": s("integer"), "detail": s("string"), "field": s("string")}},
        "Agent": {"type": "object", "required": ["id", "state"], "properties": {
            "id": s("string"),
            "state": {"type": "string", "enum": ["offline", "available", "reserved", "on_call", "wrap_up", "paused"]},
            "reason": s("string"), "in_state_ms": s("integer"), "last_call": opt("string"),
            "awaiting_disposition": s("boolean"), "pause_pending": opt("string"), "stats": s("object")}},
        "AgentStateBody": {"type": "object", "required": ["state"], "additionalProperties": false, "properties": {
            "state": {"type": "string", "enum": ["paused", "available"]},
            "reason": {"type": "string", "minLength": 1, "maxLength": 64}}},
        "NewAgentBody": {"type": "object", "required": ["id", "password"], "additionalProperties": false,
            "examples": [{"id": "1001", "password": "s3cret-phone", "realm": "outdial"}],
            "properties": {
            "id": {"type": "string", "pattern": "^[A-Za-z0-9._+-]{1,64}$"},
            "password": {"type": "string", "minLength": 8, "maxLength": 128},
            "realm": {"type": "string", "minLength": 1, "maxLength": 64}}},
        "PasswordBody": {"type": "object", "required": ["password"], "additionalProperties": false, "properties": {
            "password": {"type": "string", "minLength": 8, "maxLength": 128}}},
        "DispositionBody": {"type": "object", "required": ["disposition"], "additionalProperties": false, "properties": {
            "disposition": {"type": "string", "minLength": 1, "maxLength": 64},
            "note": {"type": "string", "maxLength": 1000}}},
        "CallList": {"type": "object", "required": ["id", "name", "numbersCount", "createdAt"], "properties": {
            "id": s("integer"), "name": s("string"), "numbersCount": s("integer"), "createdAt": s("string")}},
        "CreatedCallList": {"allOf": [{"$ref": "#/components/schemas/CallList"}, {"type": "object", "properties": {
            "errors": {"type": "array", "items": {"type": "object", "properties": {
                "line": s("integer"), "index": s("integer"), "reason": s("string")}}}}}]},
        "CallListBody": {"type": "object", "required": ["name", "numbers"], "additionalProperties": false,
            "examples": [{"name": "north", "numbers": [{"number": "+14155550100", "attributes": {"name": "Ann"}}, {"number": "+14155550101"}]}],
            "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 100},
            "defaultRegion": {"type": "string", "minLength": 2, "maxLength": 2},
            "numbers": {"type": "array", "items": {"type": "object", "required": ["number"], "additionalProperties": false,
                "properties": {"number": s("string"), "attributes": s("object")}}}}},
        "CampaignBody": {"type": "object", "required": ["name", "callerId"],
            "examples": [{"name": "spring", "callerId": "+14155550000", "cps": 5, "maxConcurrent": 10, "ringTimeout": 20,
                          "rescheduleRules": [{"disposition": "busy", "retry_after": 300, "max_attempts": 3}]}],
            "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 100},
            "callerId": s("string"),
            "callLists": {"type": "array", "items": {"type": "integer", "minimum": 1}},
            "cps": {"type": "number", "exclusiveMinimum": 0},
            "maxConcurrent": {"type": "integer", "minimum": 1},
            "ringTimeout": {"type": "integer", "minimum": 1},
            "holdTime": {"type": "number", "minimum": 0},
            "rescheduleRules": {"type": "array", "items": {"type": "object"}},
            "amd": s("object"), "acd": s("object"),
            "onMachine": {"type": "string", "enum": ["hangup", "voicemail", "continue"]},
            "onHuman": {"type": "string", "enum": ["continue", "hangup", "prompt", "queue", "ivr"]},
            "ivr": r("IvrApp"), "recordingsDir": s("string"),
            "ivrApp": {"type": "string", "description": "the name of a stored IVR application (/v1/ivr), copied into ivr"},
            "inbound": {"type": "object", "required": ["numbers"], "additionalProperties": false,
                "description": "Inbound calls to these numbers go to the campaign's agents, ahead of outbound customers",
                "properties": {"numbers": {"type": "array", "minItems": 1, "items": s("string")},
                               "allowFrom": {"type": "array", "items": s("string")},
                               "authUsername": s("string"), "authPassword": {"type": "string", "writeOnly": true}}},
            "startAt": {"type": "string", "format": "date-time",
                "description": "RFC 3339 with its offset: `start` makes the campaign `scheduled` until then"},
            "stopAt": {"type": "string", "format": "date-time",
                "description": "RFC 3339, after startAt: no new call from then on; the campaign ends `completed`"},
            "activePeriod": active_period,
            "webhook": {"type": "object", "required": ["url", "secret"], "properties": {
                "url": s("string"), "secret": {"type": "string", "minLength": 16},
                "events": {"type": "array", "items": {"type": "string", "enum": event_names()}},
                "maxAttempts": {"type": "integer", "minimum": 1}, "queue": {"type": "integer", "minimum": 1},
                "timeout": {"type": "integer", "minimum": 1}}}},
            "description": "The campaign file's settings in camelCase (docs/api.md), over the service's campaign_defaults."},
        "IvrApp": ivr_app,
        "Campaign": {"type": "object", "required": ["id", "name", "state", "callLists"], "properties": {
            "id": s("integer"), "name": s("string"),
            "state": {"type": "string", "enum": ["draft", "scheduled", "active", "paused", "completed", "archived"]},
            "callLists": {"type": "array", "items": s("integer")}, "createdAt": s("string"), "updatedAt": s("string")}},
        "ControlBody": {"type": "object", "required": ["command"], "additionalProperties": false, "properties": {
            "command": {"type": "string", "enum": ["start", "pause", "unpause", "reload", "remove", "recycle"]},
            "dispositions": {"type": "array", "items": {"type": "string"},
                "description": "recycle: the final dispositions whose leads are dialled again"}}},
        "Call": {"type": "object", "properties": call_props},
        "Stats": {"type": "object", "properties": {
            "campaign": s("string"), "state": s("string"), "attempts": s("integer"), "answered": s("integer"),
            "answerRate": s("number"), "abandonRate": s("number"), "amdShares": s("object"),
            "pddP50Ms": s("number"), "pddP90Ms": s("number"), "pddP99Ms": s("number"),
            "dispositions": s("object"), "agents": s("object"),
            "ivrChoices": {"type": "object", "additionalProperties": {"type": "integer"}},
            "ivrExits": {"type": "object", "additionalProperties": {"type": "integer"}},
            "agentOccupancy": {"type": "object", "additionalProperties": {"type": "object", "properties": {
                "availableMs": s("integer"), "handlingMs": s("integer"), "pausedMs": s("integer"),
                "occupancy": s("number")}}}}},
    })
}

fn event_names() -> Vec<&'static str> {
    let mut v: Vec<&'static str> = EVENT_TYPES.to_vec();
    v.extend(["completed", "agent_state"]);
    v
}
