/** The wire protocol version this code speaks; Admit and Hello carry it. */
export const PROTOCOL_VERSION = 1;
/** Bytes of the big-endian length that precedes every frame. */
export const FRAME_PREFIX_BYTES = 4;
/** Default largest frame body (64 MiB); FrameDecoder takes another limit if configured. */
export const FRAME_BYTES_MAX = 64 * 1024 * 1024;
/** Largest body of a frame that is not a batch (or, later, a sync message): 256 KiB. */
export const SMALL_FRAME_BYTES_MAX = 256 * 1024;
/** Largest node id, in UTF-8 bytes. */
export const NODE_ID_BYTES_MAX = 128;
/** Largest vault name, in UTF-8 bytes. */
export const VAULT_NAME_BYTES_MAX = 128;
/** Largest error code carried by an Error message. */
export const ERROR_CODE_BYTES_MAX = 64;
/** Largest error text carried by an Error message. */
export const ERROR_MESSAGE_BYTES_MAX = 4096;
/** Most vault positions one heartbeat carries. */
export const HEARTBEAT_VAULTS_MAX = 1024;
/** Largest epoch: a u32. */
export const EPOCH_MAX = 0xffffffff;

/** Mirror of docs/journal-format.md (src/record owns it; wire may import only core). */
export const RECORD_MAGIC = 0x31525355;
/** Bytes of the fixed record header (docs/journal-format.md). */
export const RECORD_HEADER_BYTES = 40;
/** Largest record payload (docs/journal-format.md): 2 MiB. */
export const RECORD_PAYLOAD_BYTES_MAX = 2 << 20;
/** Most entries in one ManifestChunk. */
export const MANIFEST_CHUNK_ENTRIES_MAX = 1024;
/** Bytes a ManifestChunk's encoder aims to stay under (a single entry may exceed it). */
export const MANIFEST_CHUNK_BYTES_TARGET = 4 << 20;
/** Longest relative path or symlink target in a manifest (PATH_MAX). */
export const MANIFEST_PATH_BYTES_MAX = 4096;
/** Most paths a ManifestRequest names. */
export const MANIFEST_REQUEST_PATHS_MAX = 4096;
/** Longest xattr name (XATTR_NAME_MAX). */
export const XATTR_NAME_BYTES_MAX = 255;
/** Largest xattr value (XATTR_SIZE_MAX). */
export const XATTR_VALUE_BYTES_MAX = 65536;
/** Most xattrs of one manifest entry. */
export const MANIFEST_ENTRY_XATTRS_MAX = 256;
/** Longest hard-link group key. */
export const MANIFEST_LINK_KEY_BYTES_MAX = 64;
/** Most block-hash bytes in one ManifestEntry (65536 hashes; longer files continue). */
export const MANIFEST_BLOCK_HASHES_BYTES_MAX = 1 << 20;
/** Bytes of one block hash on the wire (mirror of src/sync BLOCK_HASH_BYTES). */
export const MANIFEST_BLOCK_HASH_BYTES = 16;
/** Most paths one SetAsideRequest names (a sync sends more in several requests). */
export const SET_ASIDE_PATHS_MAX = 4096;
/** Most error lines one SetAsideReply carries (the target's log has them all). */
export const SET_ASIDE_ERRORS_MAX = 64;
