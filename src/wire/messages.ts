import type { Epoch, Seq } from '../core/index.js';

/** What a node does for one vault on a link. */
export type Role = 'source' | 'target';
/** What the sender of a Hello asks for: to forward records, or to receive them. */
export type Want = 'forward' | 'receive';

/** Server to client, once, after the TLS handshake: the link is admitted. */
export interface AdmitMessage {
  type: 'admit';
  protocolVersion: number;
  nodeId: string;
}

/** Client to server, once per vault: who it is and how far its copy is durable. */
export interface HelloMessage {
  type: 'hello';
  protocolVersion: number;
  nodeId: string;
  vault: string;
  epoch: Epoch;
  lastDurableSeq: Seq;
  role: Role;
  want: Want;
  /** Set by a source whose target needs a sync: the target may resume past its checkpoint. */
  resync?: true;
}

/** Server to client, answer to a Hello: where the record stream resumes. */
export interface WelcomeMessage {
  type: 'welcome';
  nodeId: string;
  vault: string;
  epoch: Epoch;
  resumeFromSeq: Seq;
}

/** Source to target: framed journal records firstSeq..lastSeq, opaque and CRC-checked. */
export interface BatchMessage {
  type: 'batch';
  vault: string;
  epoch: Epoch;
  firstSeq: Seq;
  lastSeq: Seq;
  recordCount: number;
  records: Buffer;
}

/** Target to source: every record up to durableSeq is applied and checkpointed. */
export interface AckMessage {
  type: 'ack';
  vault: string;
  epoch: Epoch;
  durableSeq: Seq;
}

/** One vault's position as the sender of a heartbeat knows it. */
export interface VaultPosition {
  vault: string;
  epoch: Epoch;
  lastSeq: Seq;
  durableSeq: Seq;
}

/** Either direction, every heartbeat interval. */
export interface HeartbeatMessage {
  type: 'heartbeat';
  nodeId: string;
  epoch: Epoch;
  sentAtMs: number;
  vaults: VaultPosition[];
}

/** Either direction: a refusal or failure for the peer's log; vault '' is the whole link. */
export interface ErrorMessage {
  type: 'error';
  code: string;
  message: string;
  vault: string;
}

/** Kinds of entries in a manifest (lstat; symlinks never followed). */
export type ManifestEntryType = 'file' | 'dir' | 'symlink' | 'fifo' | 'socket' | 'chr' | 'blk';

/**
 * Source to target, first message of a link of its own: a manifest of the replica once its
 * checkpoint is >= atSeq (docs/sync.md). `paths` empty: the whole tree.
 */
export interface ManifestRequestMessage {
  type: 'manifestRequest';
  requestId: number;
  nodeId: string;
  vault: string;
  atSeq: Seq;
  withHashes: boolean;
  paths: Buffer[];
  /** How long the target may wait for atSeq; 0 means its default. */
  waitMsMax: number;
}

/** One entry of a manifest on the wire; firstBlock > 0 continues the previous entry's hashes. */
export interface ManifestEntryMessage {
  path: Buffer;
  type: ManifestEntryType;
  size: number;
  mode: number;
  uid: number;
  gid: number;
  mtimeNs: bigint;
  rdev: number;
  target: Buffer;
  xattrs: Array<{ name: Buffer; value: Buffer }>;
  nlink: number;
  linkKey: string;
  blockSize: number;
  firstBlock: number;
  blockHashes: Buffer;
}

/** Target to source: a slice of the manifest; the last one has done set. */
export interface ManifestChunkMessage {
  type: 'manifestChunk';
  requestId: number;
  entries: ManifestEntryMessage[];
  done: boolean;
  /** The target's checkpoint when its scan began; 0 while it still waits for atSeq. */
  atSeq: Seq;
  /** The target's checkpoint now. */
  checkpointSeq: Seq;
}

/** Target to source: the manifest cannot be made; the link closes after it. */
export interface ManifestErrorMessage {
  type: 'manifestError';
  requestId: number;
  code: string;
  message: string;
}

/**
 * Source to target, first message of a link of its own, during a sync: move these objects
 * out of the replica into the set-aside folder, or remove them with `delete` (docs/sync.md).
 */
export interface SetAsideRequestMessage {
  type: 'setAsideRequest';
  requestId: number;
  nodeId: string;
  vault: string;
  /** The sync's id, decimal. */
  syncId: string;
  /** Each object as the target's manifest showed it: moved only if it still is that. */
  entries: SetAsideEntryMessage[];
  delete: boolean;
}

/** One object of a SetAsideRequest. */
export interface SetAsideEntryMessage {
  path: Buffer;
  type: ManifestEntryType;
  size: number;
  mtimeNs: bigint;
}

/** Target to source: what a SetAsideRequest did; the link closes after it. */
export interface SetAsideReplyMessage {
  type: 'setAsideReply';
  requestId: number;
  moved: number;
  deleted: number;
  /** Left in place: changed since the manifest (records of the stream reached them). */
  changed: number;
  /** Where the objects went on the target. */
  folder: string;
  /** One line per path that could not be handled (at most SET_ASIDE_ERRORS_MAX). */
  errors: string[];
}

/** Every message a link carries, discriminated by `type`. */
export type WireMessage =
  | AdmitMessage
  | HelloMessage
  | WelcomeMessage
  | BatchMessage
  | AckMessage
  | HeartbeatMessage
  | ErrorMessage
  | ManifestRequestMessage
  | ManifestChunkMessage
  | ManifestErrorMessage
  | SetAsideRequestMessage
  | SetAsideReplyMessage;

/** The `type` of a WireMessage. */
export type WireMessageType = WireMessage['type'];
