import { BlockList, isIP } from 'node:net'

/**
 * The SSRF guard of the client-metadata-document fetch: an address may be connected to only if
 * it is an ordinary public unicast address. Everything in the IANA special-purpose registries is
 * refused — private, loopback, link-local (cloud metadata at 169.254.169.254), shared CGNAT,
 * documentation, benchmarking, multicast, reserved — and so is each IPv4 range written as an
 * IPv4-mapped IPv6 address, and the transition prefixes that embed an IPv4 address (NAT64, 6to4).
 */
const IPV4_SPECIAL: ReadonlyArray<readonly [string, number]> = [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16],
  ['172.16.0.0', 12], ['192.0.0.0', 24], ['192.0.2.0', 24], ['192.88.99.0', 24], ['192.168.0.0', 16],
  ['198.18.0.0', 15], ['198.51.100.0', 24], ['203.0.113.0', 24], ['224.0.0.0', 4], ['240.0.0.0', 4],
]

const IPV6_SPECIAL: ReadonlyArray<readonly [string, number]> = [
  ['::', 128], ['::1', 128], ['64:ff9b::', 96], ['64:ff9b:1::', 48], ['100::', 64], ['2001::', 23],
  ['2001:db8::', 32], ['2002::', 16], ['fc00::', 7], ['fe80::', 10], ['fec0::', 10], ['ff00::', 8],
]

const BLOCKED = new BlockList()
for (const [net, prefix] of IPV4_SPECIAL) {
  BLOCKED.addSubnet(net, prefix, 'ipv4')
  BLOCKED.addSubnet(`::ffff:${net}`, 96 + prefix, 'ipv6')
}
for (const [net, prefix] of IPV6_SPECIAL) BLOCKED.addSubnet(net, prefix, 'ipv6')

/** True only for a literal IPv4 or IPv6 address outside every special-purpose range. */
export function isPublicAddress (address: string): boolean {
  const family = isIP(address)
  if (family === 4) return !BLOCKED.check(address, 'ipv4')
  if (family === 6) return !BLOCKED.check(address, 'ipv6')
  return false
}
