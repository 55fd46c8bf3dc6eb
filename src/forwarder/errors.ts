import { UnderstudyError } from '../core/index.js';

/** A target's state file cannot be read back: never guessed around. */
export class TargetStateCorruptError extends UnderstudyError {
  readonly code = 'FORWARDER_TARGET_STATE_CORRUPT';
  constructor(readonly file: string, reason: string) {
    super(`target state ${file} is unreadable: ${reason}`,
      'move the file aside; the target then holds the whole journal until it acks again');
  }
}

/** A target answered a Hello in a way the source cannot serve (it needs a resync). */
export class ForwarderResyncNeededError extends UnderstudyError {
  readonly code = 'FORWARDER_NEEDS_RESYNC';
  constructor(readonly vault: string, readonly target: string, reason: string) {
    super(`target ${target} of vault ${vault} needs a resync: ${reason}`,
      'resynchronise it with `understudy sync` (issue 4); the source keeps serving writes');
  }
}
