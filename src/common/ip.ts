/**
 * IP literal checks without node:net (loading Node's compatibility layer costs the proxy ~7 MB of resident
 * memory at startup; nothing on its startup path needs it).
 */

/** 4 for a dotted-quad IPv4 literal, 6 for an IPv6 literal (with optional %zone), 0 otherwise (node:net's isIP). */
export function ipFamily(s: string): 0 | 4 | 6 {
  if (isIPv4(s)) return 4;
  if (isIPv6(s)) return 6;
  return 0;
}

/** True for a dotted-quad IPv4 literal ("10.0.0.1"; no leading zeros, each part 0-255). */
export function isIPv4(s: string): boolean {
  let parts = 0, value = 0, digits = 0;
  for (let i = 0; i <= s.length; i++) {
    const c = i < s.length ? s.charCodeAt(i) : 46;
    if (c === 46) {
      if (digits === 0 || value > 255) return false;
      parts++;
      value = 0;
      digits = 0;
    } else if (c >= 48 && c <= 57) {
      if (digits > 0 && value === 0) return false; // leading zero
      value = value * 10 + (c - 48);
      if (++digits > 3) return false;
    } else {
      return false;
    }
  }
  return parts === 4;
}

/** True for an IPv6 literal: up to 8 hex groups, at most one "::", an optional trailing IPv4 and %zone. */
export function isIPv6(s: string): boolean {
  const pct = s.indexOf("%");
  if (pct >= 0) {
    if (pct === s.length - 1) return false;
    s = s.slice(0, pct);
  }
  if (s.length < 2) return false;
  const dbl = s.indexOf("::");
  if (dbl >= 0 && s.indexOf("::", dbl + 1) >= 0) return false;
  const groups = s.split(":");
  let count = 0;
  for (let i = 0; i < groups.length; i++) {
    const g = groups[i];
    if (g === "") {
      // empty groups only as part of the single "::" (or its ends)
      if (dbl < 0) return false;
      continue;
    }
    if (i === groups.length - 1 && g.includes(".")) {
      if (!isIPv4(g)) return false;
      count += 2;
      continue;
    }
    if (g.length > 4) return false;
    for (let j = 0; j < g.length; j++) {
      const c = g.charCodeAt(j) | 0x20;
      if (!((c >= 48 && c <= 57) || (c >= 97 && c <= 102))) return false;
    }
    count++;
  }
  if (dbl < 0) return count === 8 && !s.startsWith(":") && !s.endsWith(":");
  if (s.startsWith(":") && !s.startsWith("::")) return false;
  if (s.endsWith(":") && !s.endsWith("::")) return false;
  return count <= 7;
}
