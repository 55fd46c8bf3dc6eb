import { UnderstudyError } from '../core/index.js';

/** Every failure of the wire module: bad bytes from a peer, a refused peer, a closed link. */
export abstract class WireError extends UnderstudyError {}

/** A frame's length prefix is over the limit; the link is closed before buffering it. */
export class WireFrameTooLargeError extends WireError {
  readonly code = 'WIRE_FRAME_TOO_LARGE';
  constructor(readonly frameBytes: number, readonly frameBytesMax: number) {
    super(`a frame of ${frameBytes} bytes is over the limit of ${frameBytesMax} bytes`,
      'the peer runs an incompatible version or sends garbage; check its version and logs');
  }
}

/** A frame that does not decode to a valid message: bad protobuf, field, limit or record. */
export class WireMalformedError extends WireError {
  readonly code = 'WIRE_MALFORMED';
  constructor(reason: string, options?: { cause?: unknown }) {
    super(`malformed frame: ${reason}`,
      'the link was closed; check the peer runs the same understudy version, and its logs',
      options);
  }
}

/** A peer whose certificate is not trusted, or not the node expected at that address. */
export class WirePeerUntrustedError extends WireError {
  readonly code = 'WIRE_PEER_UNTRUSTED';
  constructor(reason: string) {
    super(`peer refused: ${reason}`,
      'put the peer\'s fingerprint (printed by `understudy keygen`) in this node\'s ' +
      'trusted peers, and this node\'s fingerprint in the peer\'s');
  }
}

/** The peer answered with an Error frame instead of admitting the link. */
export class WirePeerRefusedError extends WireError {
  readonly code = 'WIRE_PEER_REFUSED';
  constructor(readonly peerCode: string, peerMessage: string) {
    super(`the peer refused the link: ${peerCode}: ${peerMessage}`,
      'read the peer\'s log for the reason');
  }
}

/** A link could not be set up or was closed before it was usable. */
export class WireConnectError extends WireError {
  readonly code = 'WIRE_CONNECT_FAILED';
  constructor(readonly address: string, reason: string, options?: { cause?: unknown }) {
    super(`cannot link to ${address}: ${reason}`,
      'check the peer daemon runs and listens there, and that the network lets it through',
      options);
  }
}

/** A message was sent on a link that is already closed. */
export class WireLinkClosedError extends WireError {
  readonly code = 'WIRE_LINK_CLOSED';
  constructor(readonly peer: string, reason: string) {
    super(`the link to ${peer} is closed (${reason})`, 'open a new link and resume from an ack');
  }
}

/** A key or certificate file would be overwritten, or cannot be used as it is. */
export class WireKeyError extends WireError {
  constructor(readonly code: 'WIRE_KEY_EXISTS' | 'WIRE_KEY_INVALID', message: string,
    hint: string, options?: { cause?: unknown }) {
    super(message, hint, options);
  }
}

/** A fingerprint that is not `sha256:` followed by 32 colon-separated hex bytes. */
export class WireFingerprintInvalidError extends WireError {
  readonly code = 'WIRE_FINGERPRINT_INVALID';
  constructor(readonly text: string) {
    super(`"${text.slice(0, 120)}" is not a certificate fingerprint`,
      'copy the fingerprint printed by `understudy keygen` on the peer (sha256:AB:CD:...)');
  }
}
