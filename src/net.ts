import { domainToASCII } from "node:url";
import ipaddr from "ipaddr.js";

/** An IPv4 network as the first and last address (as unsigned 32-bit numbers) plus its text. */
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
    .fromByteArray([
      (n >>> 24) & 255,
      (n >>> 16) & 255,
      (n >>> 8) & 255,
      n & 255,
    ])
    .toString();

/**
 * Parse `a.b.c.d/p` (already shape-checked by the schema). One parse: the network and
 * broadcast addresses follow from the address and the prefix, where ipaddr.js's
 * networkAddressFromCIDR and broadcastAddressFromCIDR would each parse the text again.
 */
export function parseNet(text: string): Net {
  const [addr, prefix] = ipaddr.IPv4.parseCIDR(text);
  const size = 2 ** (32 - prefix);
  const first = Math.floor(toNumber(addr) / size) * size;
  return { text, first, last: first + size - 1, prefix };
}

/** A single address as a /32 network. */
export function hostNet(address: string): Net {
  const n = toNumber(ipaddr.IPv4.parse(address));
  return { text: `${address}/32`, first: n, last: n, prefix: 32 };
}

/** True when the address part of a CIDR has no bits set below its prefix. */
export function hostBitsZero(cidr: string): boolean {
  const [addr, prefix] = ipaddr.IPv4.parseCIDR(cidr);
  return toNumber(addr) % 2 ** (32 - prefix) === 0;
}

/** The network address of a CIDR, e.g. `10.20.0.0/16` for `10.20.3.4/16`. */
export function networkOf(cidr: string): string {
  const net = parseNet(cidr);
  return `${fromNumber(net.first)}/${net.prefix}`;
}

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

/**
 * AWS keeps five addresses of every subnet: the network address, +1 (VPC router), +2 (DNS),
 * +3 (reserved for future use) and the broadcast address.
 */
export function awsReservedAddresses(net: Net): string[] {
  return [0, 1, 2, 3].map((k) => addressAt(net, k)).concat(addressAt(net, -1));
}

/** Sort key for addresses and networks in numeric, not text, order. */
export function compareNets(a: Net, b: Net): number {
  return a.first - b.first || a.last - b.last;
}

/**
 * Why `text` is not an IPv4 address in dotted-quad form without leading zeros, or undefined.
 * That form is the only one every consumer (NM, iptables, AWS, ipaddr.js) reads alike: ipaddr.js
 * reads `012` as octal and throws on `08`.
 */
export function ipv4Problem(text: string): string | undefined {
  const octets = text.split(".");
  if (octets.length !== 4)
    return `it has ${octets.length} part(s), an IPv4 address has 4`;
  for (const o of octets) {
    if (!/^\d{1,3}$/.test(o))
      return `${JSON.stringify(o)} is not an octet (0-255)`;
    if (o.length > 1 && o.startsWith("0"))
      return `octet ${o} has a leading zero, which some tools read as octal`;
    if (Number(o) > 255) return `octet ${o} is more than 255`;
  }
  return undefined;
}

/** Why `text` is not an IPv4 CIDR `a.b.c.d/p` (prefix 0-32), or undefined. Host bits are not looked at. */
export function cidrProblem(text: string): string | undefined {
  const slash = text.indexOf("/");
  if (slash < 0) return "it has no /prefix";
  const address = ipv4Problem(text.slice(0, slash));
  if (address) return address;
  const prefix = text.slice(slash + 1);
  if (!/^(0|[1-9]\d?)$/.test(prefix) || Number(prefix) > 32)
    return `prefix /${prefix} is not a number from 0 to 32`;
  return undefined;
}

/**
 * Why `name` is not a DNS name as gen-lab accepts one, or undefined: dot-separated labels of
 * 1-63 lowercase letters, digits and inner hyphens, at most 253 characters, and a last label
 * that is not all digits (that would be an IP address, not a name). These names are printed
 * into shell scripts: the character set is what keeps them inert there.
 */
export function dnsNameProblem(name: string): string | undefined {
  if (name.length === 0) return "it is empty";
  if (name.length > 253)
    return `it is ${name.length} characters, a DNS name has at most 253`;
  const labels = name.split(".");
  for (const label of labels) {
    if (label === "")
      return "it has an empty label: two dots in a row, or a dot at either end";
    if (label.length > 63)
      return `label ${label.slice(0, 20)}... is ${label.length} characters, at most 63 are allowed`;
    if (!/^[a-z0-9-]+$/.test(label))
      return /^[A-Za-z0-9-]+$/.test(label)
        ? `label ${JSON.stringify(label)} has uppercase letters`
        : `label ${JSON.stringify(label)} has characters other than a-z, 0-9 and -`;
    if (label.startsWith("-") || label.endsWith("-"))
      return `label ${JSON.stringify(label)} starts or ends with a hyphen`;
  }
  const last = labels[labels.length - 1]!;
  // URL parsers (WHATWG's, which `new URL` and browsers follow) read a host whose last label
  // is a number, decimal or 0x hex, as an IPv4 address.
  if (/^\d+$/.test(last))
    return "its last label is all digits, which makes it an IP address, not a name";
  if (/^0x[0-9a-f]*$/.test(last))
    return "its last label reads as a hex number, which makes it an IP address, not a name";
  // An `xn--` label is the ASCII form of an internationalized one: it must decode.
  if (domainToASCII(name) === "")
    return labels.some((l) => l.startsWith("xn--"))
      ? "an xn-- label is not valid punycode (IDNA)"
      : "URL parsers do not accept it as a host name (IDNA)";
  return undefined;
}
