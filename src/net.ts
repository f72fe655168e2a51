import { domainToASCII } from "node:url";
import ipaddr from "ipaddr.js";

/** An IPv4 network as its first and last address (unsigned 32-bit numbers), its prefix and its text. */
export interface Net {
  readonly text: string;
  readonly first: number;
  readonly last: number;
  readonly prefix: number;
}

const toNumber = (a: ipaddr.IPv4): number =>
  a.toByteArray().reduce((n, byte) => n * 256 + byte, 0);
const fromNumber = (n: number): string =>
  ipaddr
    .fromByteArray([n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255])
    .toString();

/** `a.b.c.d/p` (shape-checked by the schema) as the network it lies in. */
export function parseNet(text: string): Net {
  const [addr, prefix] = ipaddr.IPv4.parseCIDR(text);
  const size = 2 ** (32 - prefix);
  const first = Math.floor(toNumber(addr) / size) * size;
  return { text, first, last: first + size - 1, prefix };
}

/** A single address as a /32 network. */
export const hostNet = (address: string): Net => parseNet(`${address}/32`);

/** The network address of a CIDR, e.g. `10.20.0.0/16` for `10.20.3.4/16`. */
export function networkOf(cidr: string): string {
  const net = parseNet(cidr);
  return `${fromNumber(net.first)}/${net.prefix}`;
}

export const hostBitsZero = (cidr: string): boolean => networkOf(cidr) === cidr;
export const overlaps = (a: Net, b: Net): boolean =>
  a.first <= b.last && b.first <= a.last;
export const contains = (outer: Net, inner: Net): boolean =>
  outer.first <= inner.first && inner.last <= outer.last;
export const containsAddress = (net: Net, address: string): boolean =>
  contains(net, hostNet(address));

/** The address `offset` places after the network address (negative: before the broadcast address + 1). */
export function addressAt(net: Net, offset: number): string {
  return fromNumber(offset >= 0 ? net.first + offset : net.last + 1 + offset);
}

/** AWS keeps five addresses of every subnet: the network address, +1 (router), +2 (DNS), +3, and the broadcast address. */
export const awsReservedAddresses = (net: Net): string[] =>
  [0, 1, 2, 3, -1].map((k) => addressAt(net, k));

/**
 * Why `text` is not an IPv4 address in dotted-quad form without leading zeros, or undefined:
 * the one form every consumer (NetworkManager, iptables, AWS) reads alike.
 */
export function ipv4Problem(text: string): string | undefined {
  return ipaddr.IPv4.isValidFourPartDecimal(text)
    ? undefined
    : "it is not four decimal numbers from 0 to 255 without leading zeros, joined by dots";
}

/** Why `text` is not an IPv4 CIDR `a.b.c.d/p` (prefix 0-32), or undefined. Host bits are not looked at. */
export function cidrProblem(text: string): string | undefined {
  const [address = "", prefix, ...rest] = text.split("/");
  if (prefix === undefined || rest.length > 0) return "it has no /prefix";
  return (
    ipv4Problem(address) ??
    (/^(0|[1-9]\d?)$/.test(prefix) && Number(prefix) <= 32
      ? undefined
      : `prefix /${prefix} is not a number from 0 to 32`)
  );
}

/**
 * Why `name` is not a DNS name as gen-lab takes one, or undefined: dot-separated labels of 1-63
 * lowercase letters, digits and inner hyphens, at most 253 characters, a last label that does
 * not read as a number (URL parsers would take the name for an address). Names are printed into
 * shell scripts: the character set keeps them inert there.
 */
export function dnsNameProblem(name: string): string | undefined {
  if (name.length === 0 || name.length > 253)
    return "a DNS name has 1 to 253 characters";
  const labels = name.split(".");
  const bad = labels.find(
    (l) => !/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(l),
  );
  if (bad !== undefined)
    return `label ${JSON.stringify(bad)} is not 1-63 lowercase letters, digits and inner hyphens`;
  if (/^(\d+|0x[0-9a-f]*)$/.test(labels.at(-1)!))
    return "its last label reads as a number, which makes it an IP address, not a name";
  // An `xn--` label is the ASCII form of an internationalized one: it must decode.
  if (domainToASCII(name) === "")
    return "URL parsers do not take it as a host name";
  return undefined;
}
