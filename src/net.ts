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

/** Parse `a.b.c.d/p` (already shape-checked by the schema). */
export function parseNet(text: string): Net {
  const [addr, prefix] = ipaddr.IPv4.parseCIDR(text);
  const first = toNumber(ipaddr.IPv4.networkAddressFromCIDR(text));
  const last = toNumber(ipaddr.IPv4.broadcastAddressFromCIDR(text));
  void addr;
  return { text, first, last, prefix };
}

/** A single address as a /32 network. */
export function hostNet(address: string): Net {
  const n = toNumber(ipaddr.IPv4.parse(address));
  return { text: `${address}/32`, first: n, last: n, prefix: 32 };
}

/** True when the address part of a CIDR has no bits set below its prefix. */
export function hostBitsZero(cidr: string): boolean {
  const [addr] = ipaddr.IPv4.parseCIDR(cidr);
  return (
    ipaddr.IPv4.networkAddressFromCIDR(cidr).toString() === addr.toString()
  );
}

/** The network address of a CIDR, e.g. `10.20.0.0/16` for `10.20.3.4/16`. */
export function networkOf(cidr: string): string {
  const [, prefix] = ipaddr.IPv4.parseCIDR(cidr);
  return `${ipaddr.IPv4.networkAddressFromCIDR(cidr).toString()}/${prefix}`;
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
