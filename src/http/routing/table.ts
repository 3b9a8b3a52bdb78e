/**
 * compileRouteTable: turns a parsed RouteConfiguration into the RouteTable the connection manager
 * reads per request. Everything (matchers, regexes, header formatters, indexes) is built here, once.
 */
import { type Clock, systemClock } from "../../common/clock.ts";
import { compileRouteTracing } from "../../tracing/http_tracing.ts";
import { compileRateLimits } from "./rate_limits.ts";
import {
  type ClusterMutations,
  DirectEntry,
  type EntryCommon,
  type ForwardDefaults,
  ForwardEntry,
  RedirectEntryImpl,
} from "./actions.ts";
import type { RouteConfig, RouteConfiguration, VirtualHostConfig } from "./config.ts";
import { compileMutation, type MutationLevel } from "./header_mutation.ts";
import { HeaderMatch, QueryMatch } from "./matchers.ts";
import { compileFullMatch, literalPrefix } from "./regex.ts";
import { RetryPolicy } from "./retry_policy.ts";
import { type CompiledMatch, PathKind, RouteIndex } from "./route_index.ts";
import type { RouteEntry, RouteRequest, RouteTable } from "./types.ts";
import { DomainMatcher } from "./vhost_select.ts";
import { DENOMINATORS } from "../../runtime/snapshot.ts";

export { ForwardEntry } from "./actions.ts";
export type { ClusterMutations } from "./actions.ts";
export type { FormatterContext } from "./formatter.ts";

/** Options for compileRouteTable. */
export interface CompileRouteTableOptions {
  /** Clock for %START_TIME% when the context carries no start time (default: the system clock). */
  clock?: Clock;
}

interface Levels {
  request: MutationLevel;
  response: MutationLevel;
}

function levels(o: {
  request_headers_to_add: MutationLevel["add"];
  request_headers_to_remove: MutationLevel["remove"];
  response_headers_to_add: MutationLevel["add"];
  response_headers_to_remove: MutationLevel["remove"];
}): Levels {
  return {
    request: { add: o.request_headers_to_add, remove: o.request_headers_to_remove },
    response: { add: o.response_headers_to_add, remove: o.response_headers_to_remove },
  };
}

const EMPTY: readonly never[] = [];

function compileMatch(r: RouteConfig): CompiledMatch {
  const m = r.match;
  const cs = m.case_sensitive;
  const norm = (s: string) => cs ? s : s.toLowerCase();
  let kind: PathKind;
  let value = "";
  let regex: RegExp | undefined;
  let regexPrefix = "";
  if (m.prefix !== undefined) {
    kind = PathKind.Prefix;
    value = norm(m.prefix);
  } else if (m.path !== undefined) {
    kind = PathKind.Path;
    value = norm(m.path);
  } else if (m.path_separated_prefix !== undefined) {
    kind = PathKind.SeparatedPrefix;
    value = norm(m.path_separated_prefix);
  } else {
    // case_sensitive does not apply to safe_regex (as in Envoy).
    kind = PathKind.Regex;
    regex = compileFullMatch(m.safe_regex!.regex);
    regexPrefix = literalPrefix(m.safe_regex!.regex);
  }
  return {
    kind,
    value,
    regex,
    regexPrefix,
    caseSensitive: cs,
    headers: m.headers.length ? m.headers.map((h) => new HeaderMatch(h)) : EMPTY,
    query: m.query_parameters.length ? m.query_parameters.map((q) => new QueryMatch(q)) : EMPTY,
    grpc: m.grpc !== undefined,
    runtimeFraction: m.runtime_fraction
      ? {
        key: m.runtime_fraction.runtime_key ?? "",
        numerator: m.runtime_fraction.default_value.numerator,
        denominator: DENOMINATORS[m.runtime_fraction.default_value.denominator],
      }
      : undefined,
  };
}

/** One compiled virtual host: its routes' index (and domains, for admin explanations). */
export class VirtualHostTable {
  constructor(
    readonly name: string,
    readonly index: RouteIndex<RouteEntry>,
    readonly domains: readonly string[] = [],
  ) {}
}

/** The RouteTable implementation; matchLinear gives the same answers without the index (tests, benchmarks). */
export class CompiledRouteTable implements RouteTable {
  #hosts: DomainMatcher<VirtualHostTable>;
  constructor(
    readonly name: string,
    hosts: DomainMatcher<VirtualHostTable>,
    /** Every virtual host in config order (admin `/debug/route`). */
    readonly virtualHosts: readonly VirtualHostTable[] = [],
    /** ignore_port_in_host_matching. */
    readonly ignorePort = false,
  ) {
    this.#hosts = hosts;
  }

  /** The virtual host `authority` selects, as match() picks it (admin explanations); undefined when none. */
  findVirtualHost(authority: string): VirtualHostTable | undefined {
    return this.#hosts.find(authority);
  }

  match(req: RouteRequest): RouteEntry | null {
    const vh = this.#hosts.find(req.authority);
    return vh ? vh.index.match(req) : null;
  }

  /** Like match(), by a linear scan of the virtual host's routes. */
  matchLinear(req: RouteRequest): RouteEntry | null {
    const vh = this.#hosts.find(req.authority);
    return vh ? vh.index.matchLinear(req) : null;
  }
}

/** Compiles a parsed RouteConfiguration (from routeConfigurationSchema) into a RouteTable. */
export function compileRouteTable(
  config: RouteConfiguration,
  opts: CompileRouteTableOptions = {},
): CompiledRouteTable {
  const clock = opts.clock ?? systemClock;
  const now = () => clock.now();
  const specificLast = config.most_specific_header_mutations_wins;
  const global = levels(config);
  const hosts = new DomainMatcher<VirtualHostTable>({ ignorePort: config.ignore_port_in_host_matching });
  const globalFilters = new Map<string, unknown>(Object.entries(config.typed_per_filter_config));

  // Levels are given most specific first; Envoy applies them in that order unless
  // most_specific_header_mutations_wins, which reverses it so the most specific level wins.
  const mutation = (ls: Levels[]) => {
    const ordered = specificLast ? [...ls].reverse() : ls;
    return {
      requestHeaders: compileMutation(ordered.map((l) => l.request), { isRequest: true, now }),
      responseHeaders: compileMutation(ordered.map((l) => l.response), { isRequest: false, now }),
    };
  };

  const compileVirtualHost = (vh: VirtualHostConfig): VirtualHostTable => {
    const vhLevels = levels(vh);
    const defaults: ForwardDefaults = {
      retryPolicy: vh.retry_policy ? new RetryPolicy(vh.retry_policy) : null,
      includeRequestAttemptCount: vh.include_request_attempt_count,
      includeAttemptCountInResponse: vh.include_attempt_count_in_response,
      bufferLimitBytes: vh.per_request_buffer_limit_bytes,
      rateLimits: compileRateLimits(vh.rate_limits),
    };
    const vhFilters = Object.keys(vh.typed_per_filter_config).length
      ? new Map([...globalFilters, ...Object.entries(vh.typed_per_filter_config)])
      : globalFilters;
    const matches: CompiledMatch[] = [];
    const entries: RouteEntry[] = [];
    for (const r of vh.routes) {
      const m = compileMatch(r);
      const routeLevels = levels(r);
      const common: EntryCommon = {
        name: r.name,
        virtualHostName: vh.name,
        matchDescription: describeMatch(r.match, entries.length),
        ...mutation([routeLevels, vhLevels, global]),
        perFilterConfig: Object.keys(r.typed_per_filter_config).length
          ? new Map([...vhFilters, ...Object.entries(r.typed_per_filter_config)])
          : vhFilters,
        decorator: r.decorator,
        tracing: r.tracing === undefined ? undefined : compileRouteTracing(r.tracing),
      };
      const matched = m.kind === PathKind.Prefix || m.kind === PathKind.SeparatedPrefix ? m.value.length : -1;
      let entry: RouteEntry;
      if (r.route) {
        const perCluster = new Map<string, ClusterMutations>();
        for (const c of r.route.weighted_clusters?.clusters ?? []) {
          const cl = levels(c);
          if (
            cl.request.add!.length + cl.request.remove!.length + cl.response.add!.length +
            cl.response.remove!.length
          ) {
            perCluster.set(c.name, mutation([cl, routeLevels, vhLevels, global]));
          }
        }
        entry = new ForwardEntry(
          r.route,
          common,
          matched,
          perCluster,
          defaults,
          r.per_request_buffer_limit_bytes,
        );
      } else if (r.redirect) {
        entry = new RedirectEntryImpl(r.redirect, common, matched);
      } else {
        entry = new DirectEntry(r.direct_response!.status, r.direct_response!.body, common);
      }
      matches.push(m);
      entries.push(entry);
    }
    return new VirtualHostTable(vh.name, new RouteIndex(matches, entries), vh.domains);
  };

  const all: VirtualHostTable[] = [];
  for (const vh of config.virtual_hosts) {
    const t = compileVirtualHost(vh);
    all.push(t);
    for (const d of vh.domains) hosts.add(d, t);
  }
  return new CompiledRouteTable(config.name, hosts, all, config.ignore_port_in_host_matching);
}

/** "#2 prefix '/api' (+2 header, +1 query matchers)": how a route matches, for debug logs (config time). */
function describeMatch(
  m: {
    prefix?: string;
    path?: string;
    path_separated_prefix?: string;
    safe_regex?: unknown;
    headers: readonly unknown[];
    query_parameters: readonly unknown[];
    grpc?: unknown;
    runtime_fraction?: unknown;
  },
  index: number,
): string {
  let d = `#${index} `;
  if (m.prefix !== undefined) d += `prefix '${m.prefix}'`;
  else if (m.path !== undefined) d += `path '${m.path}'`;
  else if (m.path_separated_prefix !== undefined) d += `path_separated_prefix '${m.path_separated_prefix}'`;
  else d += `safe_regex '${(m.safe_regex as { regex?: string }).regex ?? ""}'`;
  if (m.headers.length > 0) d += ` +${m.headers.length} header matcher(s)`;
  if (m.query_parameters.length > 0) d += ` +${m.query_parameters.length} query matcher(s)`;
  if (m.grpc !== undefined) d += " +grpc";
  if (m.runtime_fraction !== undefined) d += " +runtime_fraction";
  return d;
}
