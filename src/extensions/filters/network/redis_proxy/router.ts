/**
 * Envoy's PrefixRoutes: the route of a key is the longest matching `prefix` (ASCII case-folded with
 * `case_insensitive`), else the catch-all route, else none ("no upstream host"). Matching runs on the request's
 * bytes; routes are tried longest prefix first, so the first match is the longest.
 */
import type { RedisProxyConfig, RedisRouteConfig } from "./config.ts";
import { runtime } from "../../../../runtime/current.ts";
import { DENOMINATORS } from "../../../../runtime/snapshot.ts";

/** A mirror target of a route. */
export interface MirrorPolicy {
  readonly cluster: string;
  readonly excludeReadCommands: boolean;
  /** runtime_fraction: key and default (numerator / denominator); undefined mirrors everything. */
  readonly fraction?: { key: string; numerator: number; denominator: number };
}

/** One compiled route. */
export interface RedisRoute {
  readonly prefix: Uint8Array;
  readonly removePrefix: boolean;
  readonly cluster: string;
  /** read_command_policy: reads go to this cluster. */
  readonly readCluster?: string;
  readonly mirrors: readonly MirrorPolicy[];
}

const enc = new TextEncoder();

function compile(r: RedisRouteConfig, caseInsensitive: boolean): RedisRoute {
  return {
    prefix: enc.encode(caseInsensitive ? r.prefix.toLowerCase() : r.prefix),
    removePrefix: r.remove_prefix,
    cluster: r.cluster,
    readCluster: r.read_command_policy?.cluster,
    mirrors: r.request_mirror_policy.map((m) => ({
      cluster: m.cluster,
      excludeReadCommands: m.exclude_read_commands,
      fraction: m.runtime_fraction && {
        key: m.runtime_fraction.runtime_key,
        numerator: m.runtime_fraction.default_value.numerator,
        denominator: DENOMINATORS[m.runtime_fraction.default_value.denominator],
      },
    })),
  };
}

/** Whether a mirror policy copies a command (Envoy's MirrorPolicyImpl::shouldMirror). */
export function shouldMirror(m: MirrorPolicy, write: boolean): boolean {
  if (m.excludeReadCommands && !write) return false;
  if (m.fraction !== undefined) {
    return runtime().fractionEnabled(m.fraction.key, m.fraction.numerator, m.fraction.denominator);
  }
  return true;
}

/** The prefix routes of one filter config. */
export class PrefixRouter {
  readonly #routes: RedisRoute[];
  readonly #catchAll: RedisRoute | undefined;
  readonly #caseInsensitive: boolean;

  constructor(config: RedisProxyConfig["prefix_routes"]) {
    this.#caseInsensitive = config.case_insensitive;
    this.#routes = config.routes.map((r) => compile(r, config.case_insensitive))
      .sort((a, b) => b.prefix.length - a.prefix.length);
    this.#catchAll = config.catch_all_route && compile(config.catch_all_route, false);
  }

  /** The route of the key in bytes [s, e) of `buf`, or undefined. */
  route(buf: Uint8Array, s: number, e: number): RedisRoute | undefined {
    const routes = this.#routes;
    const fold = this.#caseInsensitive;
    outer: for (let r = 0; r < routes.length; r++) {
      const p = routes[r].prefix;
      if (p.length > e - s) continue;
      for (let i = 0; i < p.length; i++) {
        let c = buf[s + i];
        if (fold && c >= 65 && c <= 90) c += 32;
        if (c !== p[i]) continue outer;
      }
      return routes[r];
    }
    return this.#catchAll;
  }
}
