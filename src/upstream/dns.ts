/**
 * Name resolution for STRICT_DNS / LOGICAL_DNS clusters. Uses getaddrinfo through `node:dns` lookup
 * (Deno.resolveDns ignores /etc/hosts), behind the injectable `Resolver` interface. node:dns is imported on the
 * first hostname lookup, so proxies without DNS clusters never load Node's compatibility layer.
 */
import { ipFamily } from "../common/ip.ts";
import type { DnsLookupFamily } from "./config.ts";

/** One resolved address. */
export interface ResolvedAddress {
  /** IP literal. */
  address: string;
  /** 4 or 6. */
  family: 4 | 6;
}

/** Resolves a hostname to all its addresses; rejects when the name does not resolve. */
export interface Resolver {
  /** Every address of `hostname` (any family), in resolver order. */
  lookup(hostname: string): Promise<ResolvedAddress[]>;
}

/** The system resolver (getaddrinfo: honours /etc/hosts and nsswitch); IP literals skip the lookup. */
export const systemResolver: Resolver = {
  async lookup(hostname: string): Promise<ResolvedAddress[]> {
    const fam = ipFamily(hostname);
    if (fam !== 0) return [{ address: hostname, family: fam }];
    const { lookup } = await import("node:dns");
    return await new Promise((resolve, reject) => {
      lookup(hostname, { all: true }, (err, addrs) => {
        if (err) reject(err);
        else resolve(addrs.map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4 })));
      });
    });
  },
};

/**
 * Applies dns_lookup_family to a lookup result (deduplicated, order kept): AUTO prefers IPv6 and falls
 * back to IPv4, V4_PREFERRED the reverse, ALL keeps both.
 */
export function selectFamily(addrs: readonly ResolvedAddress[], family: DnsLookupFamily): string[] {
  const v4: string[] = [];
  const v6: string[] = [];
  for (const a of addrs) {
    const list = a.family === 6 ? v6 : v4;
    if (!list.includes(a.address)) list.push(a.address);
  }
  switch (family) {
    case "V4_ONLY":
      return v4;
    case "V6_ONLY":
      return v6;
    case "AUTO":
      return v6.length > 0 ? v6 : v4;
    case "V4_PREFERRED":
      return v4.length > 0 ? v4 : v6;
    case "ALL": {
      const out: string[] = [];
      for (const a of addrs) if (!out.includes(a.address)) out.push(a.address);
      return out;
    }
  }
}
