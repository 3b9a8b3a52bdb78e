/** IP address helpers for x-forwarded-for handling and internal-address checks. */

function v4ToInt(ip: string): number | undefined {
  const p = ip.split(".");
  if (p.length !== 4) return undefined;
  let n = 0;
  for (const s of p) {
    const v = Number(s);
    if (!Number.isInteger(v) || v < 0 || v > 255 || s === "") return undefined;
    n = n * 256 + v;
  }
  return n;
}

/** True when `ip` lies in `address/prefixLen` (IPv4 only, plus ::ffff: mapped IPv4). */
export function inCidr(ip: string, address: string, prefixLen: number): boolean {
  const a = v4ToInt(ip.startsWith("::ffff:") ? ip.slice(7) : ip);
  const b = v4ToInt(address);
  if (a === undefined || b === undefined) {
    if (ip.includes(":") && address.includes(":")) return ipv6InCidr(ip, address, prefixLen);
    return false;
  }
  if (prefixLen === 0) return true;
  const mask = prefixLen >= 32 ? 0xffffffff : (0xffffffff << (32 - prefixLen)) >>> 0;
  return ((a & mask) >>> 0) === ((b & mask) >>> 0);
}

function expand6(ip: string): number[] | undefined {
  const [head, tail] = ip.split("::");
  const h = head ? head.split(":") : [];
  const t = tail !== undefined ? (tail ? tail.split(":") : []) : [];
  if (tail === undefined && h.length !== 8) return undefined;
  const groups = [...h, ...new Array(8 - h.length - t.length).fill("0"), ...t];
  const out = groups.map((g) => parseInt(g, 16));
  return out.length === 8 && out.every((x) => x >= 0 && x <= 0xffff) ? out : undefined;
}

function ipv6InCidr(ip: string, address: string, prefixLen: number): boolean {
  const a = expand6(ip);
  const b = expand6(address);
  if (!a || !b) return false;
  for (let i = 0; i < 8 && prefixLen > 0; i++, prefixLen -= 16) {
    const bits = Math.min(16, prefixLen);
    const mask = (0xffff << (16 - bits)) & 0xffff;
    if ((a[i] & mask) !== (b[i] & mask)) return false;
  }
  return true;
}

const CLASSIC_INTERNAL: [string, number][] = [
  ["10.0.0.0", 8],
  ["172.16.0.0", 12],
  ["192.168.0.0", 16],
  ["127.0.0.0", 8],
  ["::1", 128],
  ["fc00::", 7],
];

/** Envoy's internal-address rule: configured CIDRs, or RFC 1918 + loopback + IPv6 ULA when unset. */
export function isInternalAddress(ip: string, cidrs?: { address: string; prefixLen: number }[]): boolean {
  if (cidrs) return cidrs.some((c) => inCidr(ip, c.address, c.prefixLen));
  return CLASSIC_INTERNAL.some(([a, l]) => inCidr(ip, a, l));
}

const NO_ENTRIES: readonly string[] = Object.freeze([]);

/** Splits an x-forwarded-for value into trimmed entries (a shared empty array when absent). */
export function splitXff(v: string | undefined): readonly string[] {
  if (!v) return NO_ENTRIES;
  const out: string[] = [];
  for (const p of v.split(",")) {
    const s = p.trim();
    if (s) out.push(s);
  }
  return out;
}
