// forwarder: the source side: a vault's journal to batches to each target, acks, retention.
// Guarantees: records go out in seq order, as the journal's own bytes, from the target's
// resume point; a segment is deleted only once every target still holding it acked it.
// Never: decides anything in a runner that a pure class (AddressPlan, Backoff, LinkLiveness,
// SendWindow, planRetention) can decide; never blocks the journal on a slow target (async).
export { Backoff, type BackoffOptions } from './backoff.js';
export { AddressPlan, PROBE_INTERVAL_MS_DEFAULT, type DialStep } from './address-plan.js';
export { LinkLiveness, SILENCE_INTERVALS_DEFAULT, type LivenessVerdict } from './link-liveness.js';
export { SendWindow } from './send-window.js';
export {
  planRetention, type RetentionInput, type RetentionPlan, type RetentionSegment,
  type RetentionTarget,
} from './retention.js';
export { TargetStateStore, type TargetState } from './target-state-store.js';
export { RetentionKeeper, type RetentionKeeperOptions } from './retention-keeper.js';
export type { ForwardLink, Dialer, ForwarderStateName } from './forward-link.js';
export {
  TargetForwarder, BATCH_RECORDS_MAX, BATCH_BYTES_MAX, WINDOW_BYTES_MAX,
  type TargetForwarderOptions, type TargetForwarderStatus, type JournalPosition,
} from './target-forwarder.js';
export { TargetStateCorruptError, ForwarderResyncNeededError } from './errors.js';
