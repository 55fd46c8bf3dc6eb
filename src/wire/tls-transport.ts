import { createServer as createTcpServer, connect as connectTcp, type Server, type Socket }
  from 'node:net';
import { connect as connectTlsSocket, createServer as createTlsServer, type TLSSocket }
  from 'node:tls';
import { WireConnectError, WirePeerRefusedError, WirePeerUntrustedError } from './errors.js';
import { derFingerprint, parseFingerprint } from './keygen.js';
import { Link, stderrLogger, type WireLogger } from './link.js';
import { encodeFrame } from './frame-codec.js';
import { PROTOCOL_VERSION } from './limits.js';
import type { WireMessage } from './messages.js';

/** A node's TLS identity and the peers it trusts: fingerprint (`sha256:AB:...`) to node id. */
export interface TlsIdentity {
  key: string | Buffer;
  cert: string | Buffer;
  trusted: ReadonlyMap<string, string>;
}

/** Either mutual TLS (the default) or plain TCP when `insecure: true` is given explicitly. */
export type Security = ({ insecure?: false } & TlsIdentity) | { insecure: true };

interface Common {
  host: string;
  port: number;
  frameBytesMax?: number;
  /** Limit for the TLS handshake and the Admit that follows it (default 10 s). */
  handshakeTimeoutMs?: number;
  log?: WireLogger;
}

/** How to listen for peers; `nodeId` is this node's, sent in Admit. */
export type ListenOptions = Common & Security & {
  nodeId: string;
  /** A peer was admitted; its node id comes from its certificate (null when insecure). */
  onPeer(link: Link, peerNodeId: string | null): void;
  /** A peer was refused or its handshake failed; the reason is logged as well. */
  onRefused?(reason: string, remoteAddress: string): void;
};

/** How to reach a peer; `expectNodeId` is the node that must answer at host:port. */
export type ConnectOptions = Common & Security & { expectNodeId: string };

const TLS_VERSION = 'TLSv1.3';
const HANDSHAKE_TIMEOUT_MS = 10_000;

/** A listening socket for peers; close() stops it and closes every link it admitted. */
export class WireServer {
  readonly #server: Server;
  readonly #links: Set<Link>;

  constructor(server: Server, links: Set<Link>) {
    this.#server = server;
    this.#links = links;
  }

  /** The address and port bound (the port chosen by the system for port 0). */
  address(): { host: string; port: number } {
    const address = this.#server.address();
    if (address === null || typeof address === 'string') return { host: '', port: 0 };
    return { host: address.address, port: address.port };
  }

  /** Stops listening and closes every admitted link with `reason`. */
  async close(reason = 'the server is shutting down'): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const link of this.#links) link.close(reason);
    await closed;
  }
}

/** Normalises the trusted set's fingerprints; a malformed one is a config error. */
function trustedSet(trusted: ReadonlyMap<string, string>): Map<string, string> {
  return new Map([...trusted].map(([fingerprint, nodeId]) =>
    [parseFingerprint(fingerprint), nodeId]));
}

/** The fingerprint, CN and trusted node id of a TLS peer, or why it has none. */
function identify(socket: TLSSocket, trusted: Map<string, string>):
  { fingerprint: string; nodeId: string | undefined; cn: string } | { problem: string } {
  const cert = socket.getPeerCertificate();
  if (cert === null || cert.raw === undefined || cert.raw.length === 0) {
    return { problem: 'presented no certificate' };
  }
  const fingerprint = derFingerprint(cert.raw);
  const cn = String(cert.subject?.CN ?? '');
  return { fingerprint, nodeId: trusted.get(fingerprint), cn };
}

function remoteOf(socket: Socket): string {
  return `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
}

/** Tells a refused peer why in an Error frame, then hangs up. */
function refuse(socket: Socket, reason: string): void {
  const message = reason.slice(0, 1000);
  const frame = encodeRefusal(message);
  socket.end(frame);
  setTimeout(() => socket.destroy(), 2000).unref();
}

function encodeRefusal(message: string): Buffer {
  return encodeFrame({ type: 'error', code: 'WIRE_PEER_UNTRUSTED', message, vault: '' });
}

/**
 * Listens for peers. With TLS (1.3 only), a peer is admitted only if its certificate's
 * fingerprint is in `trusted`; then it gets an Admit frame and `onPeer` its link. A refused
 * peer gets an Error frame (WIRE_PEER_UNTRUSTED) and `onRefused` the reason.
 */
export async function listenTls(options: ListenOptions): Promise<WireServer> {
  const log = options.log ?? stderrLogger;
  const links = new Set<Link>();
  const refused = (reason: string, remote: string): void => {
    log.warn({ remote, reason }, 'peer refused');
    try {
      options.onRefused?.(reason, remote);
    } catch (error) {
      log.warn({ remote, error: String(error) }, 'the onRefused handler threw');
    }
  };
  const admit = (socket: Socket, peerNodeId: string | null): void => {
    const peer = `${peerNodeId ?? 'unauthenticated'}@${remoteOf(socket)}`;
    const link = new Link(socket, { peer, peerNodeId, log,
      ...(options.frameBytesMax === undefined ? {} : { frameBytesMax: options.frameBytesMax }) });
    links.add(link);
    link.once('close', () => links.delete(link));
    link.send({ type: 'admit', protocolVersion: PROTOCOL_VERSION, nodeId: options.nodeId });
    log.info({ peer }, 'peer admitted');
    try {
      options.onPeer(link, peerNodeId);
    } catch (error) {
      link.close(`the onPeer handler threw: ${String(error)}`);
    }
  };
  const server = options.insecure === true
    ? createTcpServer((socket) => admit(socket, null))
    : tlsServer(options, trustedSet(options.trusted), admit, refused);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (error) => log.warn({ error: error.message }, 'listening socket error'));
  return new WireServer(server, links);
}

function tlsServer(options: Common & TlsIdentity, trusted: Map<string, string>,
  admit: (socket: Socket, peerNodeId: string) => void,
  refused: (reason: string, remote: string) => void): Server {
  const server = createTlsServer({
    key: options.key, cert: options.cert, minVersion: TLS_VERSION, maxVersion: TLS_VERSION,
    requestCert: true,
    // Self-signed peers: trust is the explicit fingerprint check below, never a CA chain.
    rejectUnauthorized: false,
    handshakeTimeout: options.handshakeTimeoutMs ?? HANDSHAKE_TIMEOUT_MS,
  });
  server.on('secureConnection', (socket: TLSSocket) => {
    socket.on('error', () => undefined); // The refusal below or the Link reports errors.
    const remote = remoteOf(socket);
    const peer = identify(socket, trusted);
    if ('problem' in peer || peer.nodeId === undefined) {
      const reason = 'problem' in peer ? `the client ${peer.problem}`
        : `the client's certificate ${peer.fingerprint} (CN=${peer.cn}) is not trusted`;
      refused(reason, remote);
      refuse(socket, reason);
      return;
    }
    admit(socket, peer.nodeId);
  });
  server.on('tlsClientError', (error, socket) => {
    refused(`TLS handshake failed: ${error.message}`, remoteOf(socket));
  });
  return server;
}

/** Opens the socket and, with TLS, checks the server is `expectNodeId` by its fingerprint. */
function openSocket(options: ConnectOptions, address: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const fail = (error: Error): void => {
      socket.destroy();
      reject(new WireConnectError(address, error.message, { cause: error }));
    };
    const timeoutMs = options.handshakeTimeoutMs ?? HANDSHAKE_TIMEOUT_MS;
    let socket: Socket;
    if (options.insecure === true) {
      socket = connectTcp({ host: options.host, port: options.port }, () => resolve(socket));
    } else {
      const trusted = trustedSet(options.trusted);
      const tlsSocket = connectTlsSocket({
        host: options.host, port: options.port, key: options.key, cert: options.cert,
        minVersion: TLS_VERSION, maxVersion: TLS_VERSION,
        rejectUnauthorized: false, // Trust is the fingerprint check below.
      }, () => {
        const peer = identify(tlsSocket, trusted);
        let reason: string | null = null;
        if ('problem' in peer) reason = `the server at ${address} ${peer.problem}`;
        else if (peer.nodeId === undefined) {
          reason = `the server at ${address} presented certificate ${peer.fingerprint} ` +
            `(CN=${peer.cn}), which is not trusted`;
        } else if (peer.nodeId !== options.expectNodeId) {
          reason = `the server at ${address} is ${peer.nodeId}, not the expected ` +
            `${options.expectNodeId}`;
        }
        if (reason === null) return resolve(tlsSocket);
        (options.log ?? stderrLogger).warn({ remote: address, reason }, 'peer refused');
        refuse(tlsSocket, reason); // The server logs our reason too.
        return reject(new WirePeerUntrustedError(reason));
      });
      socket = tlsSocket;
    }
    // Also bounds the wait for Admit; connectTls clears it once admitted.
    socket.setTimeout(timeoutMs, () => fail(new Error(`no handshake within ${timeoutMs} ms`)));
    socket.on('error', fail); // After the link exists, a no-op next to the link's own handler.
  });
}

/** Waits for the server's first frame: Admit, or the Error saying why it refused us. */
function awaitAdmit(link: Link, options: ConnectOptions, address: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onClose = (reason: string): void => {
      link.off('message', onMessage);
      reject(new WireConnectError(address, `closed before admitting us: ${reason}`));
    };
    const onMessage = (message: WireMessage): void => {
      link.off('message', onMessage);
      link.off('close', onClose);
      const failure = admitProblem(message, options, address);
      if (failure === null) return resolve();
      link.close(failure.message);
      return reject(failure);
    };
    link.on('message', onMessage);
    link.once('close', onClose);
  });
}

function admitProblem(message: WireMessage, options: ConnectOptions, address: string):
  Error | null {
  if (message.type === 'error') {
    return message.code === 'WIRE_PEER_UNTRUSTED'
      ? new WirePeerUntrustedError(`${address} does not trust this node: ${message.message}`)
      : new WirePeerRefusedError(message.code, message.message);
  }
  if (message.type !== 'admit') {
    return new WireConnectError(address, `sent ${message.type} before admit`);
  }
  if (message.protocolVersion !== PROTOCOL_VERSION) {
    return new WireConnectError(address, `speaks protocol version ${message.protocolVersion}, ` +
      `this node ${PROTOCOL_VERSION}`);
  }
  if (message.nodeId !== options.expectNodeId) {
    return new WirePeerUntrustedError(`the server at ${address} calls itself ` +
      `${message.nodeId}, not the expected ${options.expectNodeId}`);
  }
  return null;
}

/**
 * Links to the peer `expectNodeId` at host:port. With TLS (1.3 only) the server must present
 * the certificate trusted for that node, and must admit this node in turn; otherwise the
 * promise rejects with WIRE_PEER_UNTRUSTED and the reason is logged.
 */
export async function connectTls(options: ConnectOptions): Promise<Link> {
  const address = `${options.host}:${options.port}`;
  const log = options.log ?? stderrLogger;
  const socket = await openSocket(options, address);
  const peerNodeId = options.insecure === true ? null : options.expectNodeId;
  const link = new Link(socket, {
    peer: `${options.expectNodeId}@${address}`, peerNodeId, log,
    ...(options.frameBytesMax === undefined ? {} : { frameBytesMax: options.frameBytesMax }),
  });
  try {
    await awaitAdmit(link, options, address);
  } catch (error) {
    link.close(error instanceof Error ? error.message : String(error));
    if (error instanceof WirePeerUntrustedError) {
      log.warn({ remote: address, reason: error.message }, 'peer refused');
    }
    throw error;
  }
  socket.setTimeout(0);
  return link;
}
