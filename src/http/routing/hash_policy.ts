/**
 * Route hash policies (RouteAction.hash_policy) for ring-hash/Maglev load balancing. Each policy
 * hashes its input with xxHash64 (as Envoy); results combine as Envoy does: the running hash is
 * rotated left by one bit, then xored with the new one; a terminal policy that produced a hash ends
 * the list.
 */
import type { HashPolicyConfig } from "./config_action.ts";
import { headerValue, queryParamValue } from "./matchers.ts";
import { pathEnd } from "./route_index.ts";
import { compileGlobal, groupCount, translateSubstitution } from "./regex.ts";
import type { RouteContext, RouteRequest } from "./types.ts";
import { xxhash64String as xxhash64 } from "../../common/xxhash64.ts";

const M64 = (1n << 64n) - 1n;

const enum K {
  Header,
  Cookie,
  SourceIp,
  Query,
}

class Policy {
  constructor(
    readonly kind: K,
    readonly name: string,
    readonly terminal: boolean,
    readonly rewrite: RegExp | undefined = undefined,
    readonly substitution = "",
    readonly generate = false,
  ) {}
}

/** The value of cookie `name` in the request's cookie header(s), or undefined. */
export function cookieValue(req: RouteRequest, name: string): string | undefined {
  const names = req.headers.names;
  for (let i = 0; i < names.length; i++) {
    if (names[i] !== "cookie") continue;
    const line = req.headers.values[i];
    let pos = 0;
    while (pos < line.length) {
      let semi = line.indexOf(";", pos);
      if (semi < 0) semi = line.length;
      while (pos < semi && line.charCodeAt(pos) === 32) pos++;
      const eq = line.indexOf("=", pos);
      if (eq > 0 && eq < semi && eq - pos === name.length && line.startsWith(name, pos)) {
        let v = line.slice(eq + 1, semi).trim();
        if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) v = v.slice(1, -1);
        return v;
      }
      pos = semi + 1;
    }
  }
  return undefined;
}

function hashHeader(p: Policy, req: RouteRequest): bigint | undefined {
  let values: string[];
  if (p.name.charCodeAt(0) === 58 || p.name === "host") {
    const v = headerValue(req, p.name);
    if (v === undefined) return undefined;
    values = [v];
  } else {
    values = req.headers.getAll(p.name);
    if (values.length === 0) return undefined;
  }
  if (p.rewrite) {
    for (let i = 0; i < values.length; i++) values[i] = values[i].replace(p.rewrite, p.substitution);
  }
  if (values.length === 1) return xxhash64(values[0]);
  // Several lines: hash them in sorted order, each seeded with the previous hash (order-independent).
  values.sort();
  let h = 0n;
  for (const v of values) h = xxhash64(v, h);
  return h;
}

function evaluate(p: Policy, req: RouteRequest, ctx: RouteContext): bigint | undefined {
  switch (p.kind) {
    case K.Header:
      return hashHeader(p, req);
    case K.Cookie: {
      const v = cookieValue(req, p.name);
      if (v !== undefined) return xxhash64(v);
      if (!p.generate) return undefined;
      // Envoy would also set the generated cookie on the response; nuncio only hashes the value it
      // would generate (from the connection's addresses), which keeps one connection sticky.
      return xxhash64(xxhash64(ctx.remoteAddress + ctx.localAddress).toString(16).padStart(16, "0"));
    }
    case K.SourceIp:
      return ctx.remoteIp ? xxhash64(ctx.remoteIp) : undefined;
    case K.Query: {
      const end = pathEnd(req.path);
      const q = end < req.path.length && req.path.charCodeAt(end) === 63 ? end + 1 : -1;
      const v = queryParamValue(req.path, q, p.name);
      return v === undefined ? undefined : xxhash64(v);
    }
  }
}

/** A compiled hash_policy list. */
export class HashPolicies {
  #policies: readonly Policy[];

  constructor(configs: readonly HashPolicyConfig[]) {
    this.#policies = configs.flatMap((c): Policy[] => {
      if (c.header) {
        const rr = c.header.regex_rewrite;
        const re = rr ? compileGlobal(rr.pattern.regex) : undefined;
        const sub = rr && re ? translateSubstitution(rr.substitution, groupCount(re)) : "";
        return [new Policy(K.Header, c.header.header_name.toLowerCase(), c.terminal, re, sub)];
      }
      if (c.cookie) {
        return [new Policy(K.Cookie, c.cookie.name, c.terminal, undefined, "", c.cookie.ttl !== undefined)];
      }
      if (c.connection_properties) {
        // source_ip: false produces no hash, as in Envoy.
        return c.connection_properties.source_ip ? [new Policy(K.SourceIp, "", c.terminal)] : [];
      }
      return [new Policy(K.Query, c.query_parameter!.name, c.terminal)];
    });
  }

  /** Number of policies. */
  get size(): number {
    return this.#policies.length;
  }

  /** The combined 64-bit hash, or undefined when no policy produced one. */
  hash(req: RouteRequest, ctx: RouteContext): bigint | undefined {
    let h: bigint | undefined;
    for (const p of this.#policies) {
      const n = evaluate(p, req, ctx);
      if (n !== undefined) {
        const old = h === undefined ? 0n : ((h << 1n) | (h >> 63n)) & M64;
        h = old ^ n;
      }
      if (p.terminal && h !== undefined) break;
    }
    return h;
  }
}
