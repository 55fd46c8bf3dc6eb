import type { AckMessage, BatchMessage, HelloMessage, WelcomeMessage } from '../wire/index.js';
import type { Checkpoint } from './checkpoint-store.js';

/** A vault this node receives, as the receiver's checks see it. */
export interface ReceivedVault {
  name: string;
  /** Node id of the vault's configured source: the only peer allowed to forward it. */
  source: string;
}

/** A refusal: sent to the peer as an Error, logged, and the link closed. */
export interface Refusal {
  code: string;
  message: string;
}

/**
 * Decides whether a Hello may open a stream: the authenticated peer must be the configured
 * source of the vault it names, forwarding, at an epoch not below the checkpoint's. Pure.
 * The stream resumes at checkpoint + 1; only a Hello with `resync` (a sync follows at once,
 * docs/sync.md) may move it forward, to the source's lastDurableSeq + 1, never backward.
 */
export function checkHello(hello: HelloMessage, peerNodeId: string,
  vaults: ReadonlyMap<string, ReceivedVault>, checkpoint: Checkpoint | null, nodeId: string):
  { welcome: WelcomeMessage } | { refuse: Refusal } {
  const vault = vaults.get(hello.vault);
  if (vault === undefined) {
    return { refuse: { code: 'RECEIVER_VAULT_UNKNOWN',
      message: `node ${nodeId} is not a target of vault ${hello.vault}` } };
  }
  if (hello.nodeId !== peerNodeId) {
    return { refuse: { code: 'RECEIVER_PEER_MISMATCH',
      message: `hello says node ${hello.nodeId} but the link is authenticated as ${peerNodeId}` } };
  }
  if (vault.source !== peerNodeId) {
    return { refuse: { code: 'RECEIVER_NOT_SOURCE',
      message: `node ${peerNodeId} is not the source of vault ${vault.name} ` +
        `(the configured source is ${vault.source})` } };
  }
  if (hello.role !== 'source' || hello.want !== 'forward') {
    return { refuse: { code: 'RECEIVER_ROLE',
      message: `hello for vault ${vault.name} asks for ${hello.role}/${hello.want}; ` +
        'this node only receives it' } };
  }
  if (checkpoint !== null && checkpoint.source !== peerNodeId) {
    return { refuse: { code: 'RECEIVER_SOURCE_CHANGED',
      message: `the replica of vault ${vault.name} was made from node ${checkpoint.source}, ` +
        `not ${peerNodeId}: it needs a resync` } };
  }
  if (checkpoint !== null && hello.epoch < checkpoint.epoch) {
    return { refuse: { code: 'RECEIVER_EPOCH_STALE',
      message: `vault ${vault.name}: source epoch ${hello.epoch} is below the replica's ` +
        `epoch ${checkpoint.epoch}` } };
  }
  const seq = checkpoint?.seq ?? 0;
  const epoch = Math.max(checkpoint?.epoch ?? 1, hello.epoch);
  const resume = hello.resync === true ? Math.max(seq, hello.lastDurableSeq) + 1 : seq + 1;
  return { welcome: { type: 'welcome', nodeId, vault: vault.name,
    epoch: epoch as WelcomeMessage['epoch'],
    resumeFromSeq: resume as WelcomeMessage['resumeFromSeq'] } };
}

/** Decides whether a batch continues the checkpoint exactly (invariant 1: no gap, no reorder). */
export function checkBatch(batch: BatchMessage, vault: string, checkpoint: Checkpoint):
  Refusal | null {
  if (batch.vault !== vault) {
    return { code: 'RECEIVER_BATCH_VAULT', message: `batch for vault ${batch.vault} on the ` +
      `link of vault ${vault}` };
  }
  if (batch.firstSeq !== checkpoint.seq + 1) {
    return { code: 'RECEIVER_BATCH_GAP', message: `vault ${vault}: batch starts at seq ` +
      `${batch.firstSeq} but the replica is at seq ${checkpoint.seq}` };
  }
  if (batch.epoch < checkpoint.epoch) {
    return { code: 'RECEIVER_EPOCH_STALE', message: `vault ${vault}: batch epoch ${batch.epoch} ` +
      `is below the replica's epoch ${checkpoint.epoch}` };
  }
  return null;
}

/** What an applied batch lets the receiver checkpoint and ack. */
export interface AfterApply {
  /** The new checkpoint seq (unchanged when nothing new is durable). */
  durableSeq: number;
  /** The applier stopped at a record: ack up to the one before and close the link. */
  stopped: Refusal | null;
}

/**
 * The seq a batch makes durable: its lastSeq, or the seq before `stoppedAt` (never past it).
 * Pure.
 */
export function afterApply(batch: BatchMessage,
  result: { lastSeq: number; stoppedAt?: number;
    errors?: readonly { seq: number; code: string; message: string }[] },
  checkpoint: Checkpoint): AfterApply {
  if (result.stoppedAt !== undefined) {
    const why = result.errors?.find((e) => e.seq === result.stoppedAt);
    return { durableSeq: Math.max(checkpoint.seq, Math.min(result.stoppedAt - 1, batch.lastSeq)),
      stopped: { code: 'RECEIVER_APPLY_STOPPED', message: `vault ${checkpoint.vault}: the ` +
        `replica cannot apply seq ${result.stoppedAt}` +
        (why === undefined ? '; see the target\'s log' : ` (${why.code}): ${why.message}`) } };
  }
  return { durableSeq: Math.max(checkpoint.seq, batch.lastSeq), stopped: null };
}

/** The Ack for a durable seq. */
export function ackFor(vault: string, checkpoint: Checkpoint): AckMessage {
  return { type: 'ack', vault, epoch: checkpoint.epoch as AckMessage['epoch'],
    durableSeq: checkpoint.seq as AckMessage['durableSeq'] };
}
