// Loads the addon's applier. Same rule as src/mount: UNDERSTUDY_NATIVE (a .node path) if set,
// else bindings('understudy_native'). Kept here so that replayer never imports mount.
import { createRequire } from 'node:module';

/** One per-record error as the addon reports it (path as raw bytes). */
export interface NativeApplyError {
  seq: number; kind: string; path: Buffer; code: string; message: string;
}

/** A batch outcome as the addon reports it. */
export interface NativeApplyResult {
  applied: number; skipped: number; lastSeq: number; errors: NativeApplyError[];
  stoppedAt?: number; skipReasons: Record<string, number>;
  durability?: 'paths' | 'filesystem'; applyUs?: number; durableUs?: number;
}

/** The addon's Applier class (native/addon_applier.cc). */
export interface NativeApplier {
  apply(records: Buffer): Promise<NativeApplyResult>;
  forgetHighWater(): void;
  close(): void;
}

interface NativeApplierAddon {
  Applier: new (replicaRoot: string) => NativeApplier;
}

let addon: NativeApplierAddon | undefined;

/** Loads the addon once. */
export function nativeApplierAddon(): NativeApplierAddon {
  if (addon !== undefined) return addon;
  const require = createRequire(import.meta.url);
  const explicit = process.env.UNDERSTUDY_NATIVE;
  addon = (explicit !== undefined && explicit !== ''
    ? require(explicit)
    : require('bindings')('understudy_native')) as NativeApplierAddon;
  return addon;
}
