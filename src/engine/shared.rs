//! One engine shared by several campaigns (`outdial serve`: campaigns with an `[acd]` on the
//! same `local_address`), so they share its agents. Each campaign's run loop gets an
//! [`EngineHandle`] of its own, exactly like one from [`shell::spawn`](super::shell::spawn):
//! its commands go to the one engine; the engine's call events come back to the campaign that
//! placed the call (by Call-ID); every agent state change goes to every campaign. A
//! campaign's `Shutdown` does not stop the engine: it hangs up that campaign's calls, waits
//! for them to end and detaches. The engine stops with [`SharedEngine::shutdown`].
//!
//! Priority: the engine's ACD connects answered calls of higher-priority campaigns first
//! (`Command::StartCall::priority`), and [`SharedEngine::demand_ahead`] tells a campaign's
//! pacer how many agents the calls of campaigns at its priority or above still need (placed,
//! not yet connected or ended), so it paces against the agents left over.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot};

use super::core::EngineStats;
use super::shell::{Command, EngineHandle};
use crate::events::{AgentEvent, CallEvent, CallEventKind};

/// A campaign joining the engine.
struct Attach {
    campaign: i64,
    priority: i32,
    events: mpsc::Sender<CallEvent>,
    agents: mpsc::UnboundedSender<AgentEvent>,
    detached: oneshot::Sender<()>,
}

/// What the hub knows of one attached campaign.
struct Port {
    events: mpsc::Sender<CallEvent>,
    agents: mpsc::UnboundedSender<AgentEvent>,
    /// Its calls not yet terminated.
    live: HashSet<String>,
    /// Its calls placed and not yet connected to an agent (nor ended).
    wanting: HashSet<String>,
    /// A `Shutdown` waiting for the calls to end.
    leaving: Option<oneshot::Sender<EngineStats>>,
    detached: Option<oneshot::Sender<()>>,
}

/// Per campaign: (priority, calls still wanting an agent).
type Demand = Arc<Mutex<HashMap<i64, (i32, usize)>>>;

/// The shared engine: see the module docs.
pub struct SharedEngine {
    commands: mpsc::UnboundedSender<Command>,
    attach: mpsc::UnboundedSender<Attach>,
    tagged: mpsc::UnboundedSender<(i64, Command)>,
    demand: Demand,
    /// Our SIP address as advertised.
    pub local_addr: SocketAddr,
    /// The trunk group's health, for every attached campaign.
    trunks: tokio::sync::watch::Receiver<crate::engine::trunks::TrunkHealth>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl std::fmt::Debug for SharedEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedEngine")
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

impl SharedEngine {
    /// Takes over a started engine.
    pub fn new(engine: EngineHandle) -> Arc<Self> {
        let (attach_tx, attach_rx) = mpsc::unbounded_channel();
        let (tagged_tx, tagged_rx) = mpsc::unbounded_channel();
        let demand: Demand = Arc::default();
        let commands = engine.commands.clone();
        let local_addr = engine.local_addr;
        let trunks = engine.trunks.clone();
        let task = tokio::spawn(hub(engine, attach_rx, tagged_rx, demand.clone()));
        Arc::new(Self {
            commands,
            attach: attach_tx,
            tagged: tagged_tx,
            demand,
            local_addr,
            trunks,
            task: Mutex::new(Some(task)),
        })
    }

    /// A handle for campaign `campaign` (its run loop uses it as its own engine).
    pub fn attach(&self, campaign: i64, priority: i32) -> EngineHandle {
        let (events_tx, events_rx) = mpsc::channel(super::shell::EVENT_QUEUE);
        let (agents_tx, agents_rx) = mpsc::unbounded_channel();
        let (detached_tx, detached_rx) = oneshot::channel();
        let (cmd_tx, mut cmd_rx) = mpsc::unbounded_channel::<Command>();
        let _ = self.attach.send(Attach {
            campaign,
            priority,
            events: events_tx,
            agents: agents_tx,
            detached: detached_tx,
        });
        // Tags the campaign's commands for the hub; ends when the campaign drops its sender.
        let tagged = self.tagged.clone();
        tokio::spawn(async move {
            while let Some(c) = cmd_rx.recv().await {
                if tagged.send((campaign, c)).is_err() {
                    break;
                }
            }
        });
        EngineHandle {
            commands: cmd_tx,
            events: events_rx,
            agent_events: agents_rx,
            local_addr: self.local_addr,
            trunks: self.trunks.clone(),
            // The "engine task" a run loop waits for: its detaching.
            task: tokio::spawn(async move {
                let _ = detached_rx.await;
            }),
        }
    }

    /// Calls of the other campaigns with priority ≥ `priority` still wanting an agent: the
    /// agents a campaign of that priority should leave to them.
    pub fn demand_ahead(&self, campaign: i64, priority: i32) -> usize {
        self.demand
            .lock()
            .expect("demand lock")
            .iter()
            .filter(|(c, (p, _))| **c != campaign && *p >= priority)
            .map(|(_, (_, n))| *n)
            .sum()
    }

    /// Stops the engine (every call hung up) and returns its counters.
    pub async fn shutdown(&self) -> Option<EngineStats> {
        let (tx, rx) = oneshot::channel();
        let _ = self.commands.send(Command::Shutdown(tx));
        let stats = rx.await.ok();
        let task = self.task.lock().expect("task lock").take();
        if let Some(t) = task {
            t.abort();
        }
        stats
    }
}

async fn hub(
    mut engine: EngineHandle,
    mut attach: mpsc::UnboundedReceiver<Attach>,
    mut tagged: mpsc::UnboundedReceiver<(i64, Command)>,
    demand: Demand,
) {
    let mut ports: HashMap<i64, Port> = HashMap::new();
    let mut owner: HashMap<String, i64> = HashMap::new();
    let publish = |ports: &HashMap<i64, Port>, id: i64| {
        let mut d = demand.lock().expect("demand lock");
        match ports.get(&id) {
            Some(p) => {
                if let Some(e) = d.get_mut(&id) {
                    e.1 = p.wanting.len();
                }
            }
            None => {
                d.remove(&id);
            }
        }
    };
    loop {
        tokio::select! {
            a = attach.recv() => {
                let Some(a) = a else { break };
                demand.lock().expect("demand lock").insert(a.campaign, (a.priority, 0));
                ports.insert(a.campaign, Port {
                    events: a.events,
                    agents: a.agents,
                    live: HashSet::new(),
                    wanting: HashSet::new(),
                    leaving: None,
                    detached: Some(a.detached),
                });
            }
            c = tagged.recv() => {
                let Some((id, cmd)) = c else { break };
                match cmd {
                    Command::StartCall { call_id, attempt, spec, preview_agent, priority } => {
                        owner.insert(call_id.clone(), id);
                        if let Some(p) = ports.get_mut(&id) {
                            p.live.insert(call_id.clone());
                            p.wanting.insert(call_id.clone());
                        }
                        publish(&ports, id);
                        let _ = engine.commands.send(Command::StartCall {
                            call_id, attempt, spec, preview_agent, priority,
                        });
                    }
                    Command::Shutdown(reply) => {
                        let Some(p) = ports.get_mut(&id) else { continue };
                        let _ = engine.commands.send(Command::HangUp(p.live.iter().cloned().collect()));
                        p.leaving = Some(reply);
                        detach_if_done(&mut ports, &mut owner, &engine.commands, id).await;
                        publish(&ports, id);
                    }
                    other => {
                        let _ = engine.commands.send(other);
                    }
                }
            }
            ev = engine.events.recv() => {
                let Some(ev) = ev else { break };
                // An inbound call belongs to no campaign yet: the earliest attached one (the
                // engine's inbound numbers are that campaign's) takes it.
                if matches!(ev.kind, CallEventKind::Accepting { .. })
                    && !owner.contains_key(&ev.call_id)
                    && let Some(first) = ports.keys().min().copied()
                {
                    owner.insert(ev.call_id.clone(), first);
                    if let Some(p) = ports.get_mut(&first) {
                        p.live.insert(ev.call_id.clone());
                    }
                }
                let Some(id) = owner.get(&ev.call_id).copied() else {
                    tracing::debug!(call_id = %ev.call_id, "event of no attached campaign");
                    continue;
                };
                let Some(p) = ports.get_mut(&id) else { continue };
                let ended = matches!(ev.kind, CallEventKind::Terminated { .. });
                // Only a connect or an end changes the demand (most events do not).
                let settled = (ended || matches!(ev.kind, CallEventKind::Connected { .. }))
                    && p.wanting.remove(&ev.call_id);
                if ended {
                    p.live.remove(&ev.call_id);
                }
                // Bounded: a campaign whose run loop falls behind slows the engine's events.
                let _ = p.events.send(ev).await;
                if ended {
                    detach_if_done(&mut ports, &mut owner, &engine.commands, id).await;
                }
                if settled || !ports.contains_key(&id) {
                    publish(&ports, id);
                }
            }
            ev = engine.agent_events.recv() => {
                let Some(ev) = ev else { break };
                for p in ports.values() {
                    let _ = p.agents.send(ev.clone());
                }
            }
        }
    }
}

/// A leaving campaign whose calls have all ended: its counters, and it is gone.
async fn detach_if_done(
    ports: &mut HashMap<i64, Port>,
    owner: &mut HashMap<String, i64>,
    commands: &mpsc::UnboundedSender<Command>,
    id: i64,
) {
    let done = ports
        .get(&id)
        .is_some_and(|p| p.leaving.is_some() && p.live.is_empty());
    if !done {
        return;
    }
    let Some(mut p) = ports.remove(&id) else {
        return;
    };
    owner.retain(|_, c| *c != id);
    let (tx, rx) = oneshot::channel();
    let _ = commands.send(Command::Stats(tx));
    let stats = rx.await.unwrap_or_default();
    if let Some(r) = p.leaving.take() {
        let _ = r.send(stats);
    }
    if let Some(d) = p.detached.take() {
        let _ = d.send(());
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::call::leg::CallSpec;
    use crate::events::{AgentState, AttemptRef, HangupBy};

    fn spec() -> Box<CallSpec> {
        Box::new(CallSpec {
            number: "+14155550123".into(),
            hops: Vec::new(),
            failover_timeout: Duration::from_secs(2),
            to_uri: String::new(),
            caller_id: "+14155550000".into(),
            caller_name: None,
            from_host: "192.0.2.1".into(),
            p_asserted_identity: None,
            ring_timeout: Duration::from_secs(30),
            hold_time: Duration::from_secs(5),
            rtp_port: 0,
            media_ip: "192.0.2.1".into(),
            media: Default::default(),
            privacy: None,
            session_expires: None,
        })
    }

    fn start(call: &str, priority: i32) -> Command {
        Command::StartCall {
            call_id: call.into(),
            attempt: AttemptRef {
                attempt_id: 1,
                lead_id: 1,
                attempt_no: 1,
            },
            spec: spec(),
            preview_agent: None,
            priority,
        }
    }

    fn event(call: &str, kind: CallEventKind) -> CallEvent {
        CallEvent {
            call_id: call.into(),
            attempt: AttemptRef {
                attempt_id: 1,
                lead_id: 1,
                attempt_no: 1,
            },
            at: Instant::now(),
            kind,
        }
    }

    fn terminated() -> CallEventKind {
        CallEventKind::Terminated {
            sip_status: Some(200),
            reason_phrase: None,
            q850_cause: None,
            hangup_by: HangupBy::Local,
            disposition: crate::events::disposition::Disposition::Answered,
            detail: crate::events::EndReason::HoldTime,
            retry_after: None,
        }
    }

    /// Waits (bounded) until `f` holds: the hub is a task of its own.
    async fn until(mut f: impl FnMut() -> bool) {
        for _ in 0..500 {
            if f() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        panic!("never happened");
    }

    #[tokio::test]
    async fn campaigns_get_their_own_events_every_agent_change_and_leave_alone() {
        // A stand-in for the engine task: its channels.
        let (cmd_tx, mut engine_cmds) = mpsc::unbounded_channel();
        let (ev_tx, ev_rx) = mpsc::channel(64);
        let (ag_tx, ag_rx) = mpsc::unbounded_channel();
        let shared = SharedEngine::new(EngineHandle {
            commands: cmd_tx,
            events: ev_rx,
            agent_events: ag_rx,
            local_addr: "127.0.0.1:5060".parse().unwrap(),
            trunks: tokio::sync::watch::channel(Default::default()).1,
            task: tokio::spawn(async {}),
        });
        let mut low = shared.attach(1, 1);
        let mut high = shared.attach(2, 5);
        low.commands.send(start("low-a", 1)).unwrap();
        high.commands.send(start("high-a", 5)).unwrap();
        high.commands.send(start("high-b", 5)).unwrap();
        // The engine gets the calls with their priorities.
        let mut placed = Vec::new();
        while placed.len() < 3 {
            match engine_cmds.recv().await.unwrap() {
                Command::StartCall {
                    call_id, priority, ..
                } => placed.push((call_id, priority)),
                other => panic!("{other:?}"),
            }
        }
        assert!(placed.contains(&("low-a".into(), 1)));
        assert!(placed.contains(&("high-b".into(), 5)));
        // Demand ahead: the low campaign leaves high's two calls their agents; high does not
        // count low's.
        until(|| shared.demand_ahead(1, 1) == 2).await;
        assert_eq!(shared.demand_ahead(2, 5), 0);
        // Events go to the campaign that placed the call; a connected call wants no agent.
        ev_tx
            .send(event(
                "high-a",
                CallEventKind::Connected {
                    agent: "1001".into(),
                    agent_call_id: "x".into(),
                    wait_ms: 0,
                    mode: "persistent".into(),
                    transcoding: false,
                },
            ))
            .await
            .unwrap();
        ev_tx
            .send(event("low-a", CallEventKind::Trying))
            .await
            .unwrap();
        assert_eq!(high.events.recv().await.unwrap().call_id, "high-a");
        assert_eq!(low.events.recv().await.unwrap().call_id, "low-a");
        until(|| shared.demand_ahead(1, 1) == 1).await;
        // Agent changes go to both.
        ag_tx
            .send(AgentEvent {
                agent: "1001".into(),
                state: AgentState::Available,
                reason: outdial_core::events::AgentReason::Registered,
                call_id: None,
                at: Instant::now(),
            })
            .unwrap();
        assert_eq!(low.agent_events.recv().await.unwrap().agent, "1001");
        assert_eq!(high.agent_events.recv().await.unwrap().agent, "1001");
        // High leaves: its live calls are hung up, it is detached once they ended, with the
        // engine's counters; the engine itself goes on for low.
        let (tx, mut rx) = oneshot::channel();
        high.commands.send(Command::Shutdown(tx)).unwrap();
        match engine_cmds.recv().await.unwrap() {
            Command::HangUp(mut ids) => {
                ids.sort();
                assert_eq!(ids, vec!["high-a".to_string(), "high-b".to_string()]);
            }
            other => panic!("{other:?}"),
        }
        assert!(rx.try_recv().is_err(), "not before its calls ended");
        ev_tx.send(event("high-a", terminated())).await.unwrap();
        ev_tx.send(event("high-b", terminated())).await.unwrap();
        match engine_cmds.recv().await.unwrap() {
            Command::Stats(reply) => reply.send(EngineStats::default()).unwrap(),
            other => panic!("{other:?}"),
        }
        assert_eq!(rx.await.unwrap(), EngineStats::default());
        high.task.await.unwrap();
        until(|| shared.demand_ahead(1, 1) == 0).await;
        // Low still gets its events.
        ev_tx.send(event("low-a", terminated())).await.unwrap();
        assert_eq!(low.events.recv().await.unwrap().call_id, "low-a");
    }
}
