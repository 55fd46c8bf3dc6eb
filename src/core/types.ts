/** A record's position in a vault's journal: 1, 2, 3, ... with no gaps. */
export type Seq = number & { readonly __brand: 'Seq' };
/** Grows at every failover; records, acks and heartbeats carry it. */
export type Epoch = number & { readonly __brand: 'Epoch' };
/** A source file id: the backing inode number, as a bigint (it is a u64 on the wire). */
export type Fid = bigint & { readonly __brand: 'Fid' };

/** Brands a number as a Seq after checking it is a positive safe integer. */
export function toSeq(value: number): Seq {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`bad seq ${value}`);
  return value as Seq;
}

/** Brands a number as an Epoch after checking it is a positive u32. */
export function toEpoch(value: number): Epoch {
  if (!Number.isInteger(value) || value < 1 || value > 0xffffffff) {
    throw new RangeError(`bad epoch ${value}`);
  }
  return value as Epoch;
}
