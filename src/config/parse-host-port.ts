import { isIPv4, isIPv6 } from 'node:net';
import { ConfigValueInvalidError } from './errors.js';

/** A parsed `host:port`; `host` carries no brackets, even for IPv6. */
export interface HostPort {
  readonly host: string;
  readonly port: number;
  readonly kind: 'ipv4' | 'ipv6' | 'name';
}

/** What `parseHostPort` accepts, as shown in error messages. */
export const HOST_PORT_EXPECTED =
  'host:port with port 1..65535, host an IPv4 address, [IPv6] in brackets, or a host name';

const LABEL = '[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?';
const HOST_NAME_PATTERN = new RegExp(`^(?=.{1,253}$)${LABEL}(?:\\.${LABEL})*\\.?$`);

/** Parses `198.18.0.1:7400`, `[::1]:7400` or `node-b.example:7400`. */
export function parseHostPort(value: string): HostPort {
  const fail = (problem: string): never => {
    throw new ConfigValueInvalidError(value, problem, HOST_PORT_EXPECTED);
  };
  const colon = value.lastIndexOf(':');
  if (colon < 0) return fail('no port');
  const hostPart = value.slice(0, colon);
  const port = parsePort(value.slice(colon + 1));
  if (port === undefined) return fail(`port "${value.slice(colon + 1)}" is not 1..65535`);
  if (hostPart.startsWith('[')) {
    if (!hostPart.endsWith(']')) return fail('"[" without a closing "]"');
    const host = hostPart.slice(1, -1);
    if (!isIPv6(host)) return fail(`"${host}" is not an IPv6 address`);
    return { host, port, kind: 'ipv6' };
  }
  if (hostPart.includes(':')) return fail('an IPv6 address must be in brackets, as [::1]:7400');
  if (isIPv4(hostPart)) return { host: hostPart, port, kind: 'ipv4' };
  // A dotted quad that isIPv4 rejects (300.1.2.3) is a typo, not a host name.
  if (/^[\d.]+$/.test(hostPart)) return fail(`"${hostPart}" is not an IPv4 address`);
  if (!HOST_NAME_PATTERN.test(hostPart)) return fail(`"${hostPart}" is not a host name`);
  return { host: hostPart, port, kind: 'name' };
}

function parsePort(text: string): number | undefined {
  if (!/^\d{1,5}$/.test(text)) return undefined;
  const port = Number(text);
  return port >= 1 && port <= 65535 ? port : undefined;
}
