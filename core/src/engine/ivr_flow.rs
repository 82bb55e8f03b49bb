//! The engine's side of the IVR: it starts a call's [`Ivr`] (on the AMD decision, or on the
//! answer with AMD off), feeds it the call's DTMF digits (RFC 4733 from the media session, SIP
//! INFO from the leg), the end of its prompts and recordings, and its timer, and carries out
//! what it returns: play or stop a prompt, record, queue the call, hang up. The menu logic is
//! all in the IVR core. A child module of `core`, so it reaches the engine's private state.

use std::time::{Duration, Instant};

use super::{CallEventKind, Engine, MediaCommand, MediaPolicy, Output, Role};
use crate::acd::MAX_CALL;
use crate::events::{AttemptRef, EndReason, Playback};
use crate::ivr::{Ivr, IvrExit, IvrOutput};

impl Engine {
    /// Starts the campaign's IVR on answered customer call `id` (nothing without one).
    pub(super) fn ivr_start(&mut self, now: Instant, id: &str) {
        let Some(slot) = self.calls.get_mut(id) else {
            return;
        };
        let Some(app) = slot.plan.ivr.clone() else {
            return;
        };
        if !slot.leg.is_up() || slot.role != Role::Customer || slot.ivr.is_some() {
            return;
        }
        // The IVR ends the call itself (its timeouts bound it), not the hold time.
        slot.leg.extend_hold(Some(now + MAX_CALL));
        let mut ivr = Ivr::new(app);
        ivr.start(now);
        slot.ivr = Some(ivr);
        self.ivr_run(now, id);
    }

    /// A DTMF digit of call `id` (either source): to its IVR, if it has one.
    pub(super) fn ivr_dtmf(&mut self, now: Instant, id: &str, digit: &str) {
        let Some(ivr) = self.calls.get_mut(id).and_then(|s| s.ivr.as_mut()) else {
            return;
        };
        if let Some(d) = digit.chars().next() {
            ivr.handle_dtmf(now, d);
        }
        self.ivr_run(now, id);
    }

    /// An IVR prompt of call `id` has played. True when the call was in its IVR.
    pub(super) fn ivr_playback_done(&mut self, now: Instant, id: &str) -> bool {
        let Some(ivr) = self.calls.get_mut(id).and_then(|s| s.ivr.as_mut()) else {
            return false;
        };
        ivr.handle_playback_done(now);
        self.ivr_run(now, id);
        true
    }

    /// Time for call `id`'s IVR (a digit's wait over).
    pub(super) fn ivr_timeout(&mut self, now: Instant, id: &str) {
        let Some(ivr) = self.calls.get_mut(id).and_then(|s| s.ivr.as_mut()) else {
            return;
        };
        if ivr.poll_timeout().is_some_and(|t| t <= now) {
            ivr.handle_timeout(now);
            self.ivr_run(now, id);
        }
    }

    /// Call `id` ended: an IVR recording in progress is stopped (the media session reports
    /// it before it closes, and [`Engine::handle_recording`] stores it with the attempt kept
    /// here).
    pub(super) fn ivr_call_ended(&mut self, id: &str) {
        let Some(slot) = self.calls.get_mut(id) else {
            return;
        };
        let Some(ivr) = slot.ivr.as_mut() else {
            return;
        };
        if let Some(node) = ivr.recording_node() {
            self.ending_recordings
                .insert(id.to_string(), (slot.attempt.clone(), node.to_string()));
            self.out
                .push_back(Output::Media(MediaCommand::StopRecording {
                    call_id: id.to_string(),
                }));
        }
        slot.ivr = None;
    }

    /// A recording of call `id` ended, `duration` long, written to `file` by the shell (if
    /// it could): the `ivr_recorded` event (and the IVR goes on: it hangs up). Also for a call
    /// that ended while recording (the caller hung up): then `ivr_recorded` and `ivr_exit`
    /// come after its `terminated`.
    pub fn handle_recording(
        &mut self,
        now: Instant,
        id: &str,
        duration: Duration,
        file: Option<String>,
    ) {
        if let Some(ivr) = self.calls.get_mut(id).and_then(|s| s.ivr.as_mut()) {
            ivr.handle_recorded(now, duration, file);
            self.ivr_run(now, id);
            self.after_touch(now, id);
            return;
        }
        if let Some((attempt, node)) = self.ending_recordings.remove(id) {
            let emit = |kind| {
                Output::Event(crate::events::CallEvent {
                    call_id: id.to_string(),
                    attempt: attempt.clone(),
                    at: now,
                    kind,
                })
            };
            self.out.push_back(emit(CallEventKind::IvrRecorded {
                node: node.clone(),
                duration_ms: duration.as_millis() as u32,
                by_key: false,
                file,
            }));
            self.out.push_back(emit(CallEventKind::IvrExit {
                node,
                exit: IvrExit::Recorded,
                callback_after_s: None,
            }));
        }
    }

    /// Carries out what call `id`'s IVR asked for, in order.
    fn ivr_run(&mut self, now: Instant, id: &str) {
        let outputs: Vec<IvrOutput> = match self.calls.get_mut(id).and_then(|s| s.ivr.as_mut()) {
            Some(ivr) => std::iter::from_fn(|| ivr.poll_output()).collect(),
            None => return,
        };
        let call_id = || id.to_string();
        for o in outputs {
            let Some(slot) = self.calls.get_mut(id) else {
                return;
            };
            match o {
                IvrOutput::Play(file) => {
                    let Some(samples) = slot.plan.ivr_prompts.get(&file).cloned() else {
                        // Not loaded (a plan built without it): as if it had played.
                        tracing::warn!(call_id = %id, file = %file.display(), "IVR prompt not loaded");
                        if let Some(ivr) = slot.ivr.as_mut() {
                            ivr.handle_playback_done(now);
                        }
                        self.ivr_run(now, id);
                        return;
                    };
                    slot.media = MediaPolicy::Playing(Playback::Ivr);
                    self.out.push_back(Output::Media(MediaCommand::Play {
                        call_id: call_id(),
                        samples,
                    }));
                }
                IvrOutput::StopPlayback => {
                    if slot.media.playing() == Some(Playback::Ivr) {
                        slot.media = MediaPolicy::Idle;
                    }
                    self.out
                        .push_back(Output::Media(MediaCommand::StopPlayback {
                            call_id: call_id(),
                        }));
                }
                IvrOutput::Record(max) => self.out.push_back(Output::Media(MediaCommand::Record {
                    call_id: call_id(),
                    max,
                })),
                IvrOutput::StopRecording => {
                    self.out
                        .push_back(Output::Media(MediaCommand::StopRecording {
                            call_id: call_id(),
                        }))
                }
                IvrOutput::Transfer(to) => {
                    let target = slot.leg.uri_for(&to);
                    slot.leg.refer(now, &target);
                }
                IvrOutput::Event(kind) => self.emit(id, now, kind),
                IvrOutput::Exit(exit) => {
                    slot.ivr = None;
                    match exit {
                        IvrExit::Queue => self.acd_enqueue(now, id),
                        // The REFER is out: the transfer ends the call.
                        IvrExit::Transfer => {}
                        _ => slot.leg.hang_up_answered(now, EndReason::IvrEnded),
                    }
                }
            }
        }
    }
}

/// Kept for a call that ended while recording, until the recording comes back.
pub(super) type EndingRecording = (AttemptRef, String);
