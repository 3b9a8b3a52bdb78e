/** The compiled route entries: forward (RouteAction), redirect and direct response. */
import type { RedirectActionConfig, RouteActionConfig } from "./config_action.ts";
import type { RouteTracing } from "../../tracing/http_tracing.ts";
import { type CompiledRateLimit, compileRateLimits } from "./rate_limits.ts";
import type { RegexMatchAndSubstitute } from "./config_util.ts";
import { HashPolicies } from "./hash_policy.ts";
import { firstHeaderValue } from "./matchers.ts";
import { compileGlobal, groupCount, translateSubstitution } from "./regex.ts";
import { ENVOY_LB } from "../../config/metadata.ts";
import { mergeCriteria, MetadataMatchCriteria } from "../../common/metadata_match.ts";
import { RetryPolicy } from "./retry_policy.ts";
import { pathEnd } from "./route_index.ts";
import type {
  DirectResponseEntry,
  HeaderMutation,
  MirrorPolicy,
  RedirectEntry,
  RouteActionEntry,
  RouteContext,
  RouteDecorator,
  RouteRequest,
} from "./types.ts";

/** Envoy's default route timeout. */
export const DEFAULT_ROUTE_TIMEOUT_MS = 15_000;

/** What every entry carries besides its action. */
export interface EntryCommon {
  readonly name: string;
  readonly virtualHostName: string;
  /** How the route matches ("#0 prefix '/'"), for debug logs. */
  readonly matchDescription: string;
  readonly requestHeaders: HeaderMutation;
  readonly responseHeaders: HeaderMutation;
  readonly perFilterConfig: ReadonlyMap<string, unknown>;
  /** The route's decorator (kept for tracing), undefined when none. */
  readonly decorator: RouteDecorator | undefined;
  /** The route's tracing overrides (sampling, custom tags), undefined when none. */
  readonly tracing: RouteTracing | undefined;
}

/** Virtual host level settings a forward entry inherits. */
export interface ForwardDefaults {
  /** The virtual host's compiled retry_policy (used when the route has none). */
  readonly retryPolicy: RetryPolicy | null;
  readonly includeRequestAttemptCount: boolean;
  readonly includeAttemptCountInResponse: boolean;
  /** The virtual host's per_request_buffer_limit_bytes. */
  readonly bufferLimitBytes: number | undefined;
  /** The virtual host's compiled rate_limits. */
  readonly rateLimits: readonly CompiledRateLimit[];
}

const NO_DEFAULTS: ForwardDefaults = {
  retryPolicy: null,
  includeRequestAttemptCount: false,
  includeAttemptCountInResponse: false,
  bufferLimitBytes: undefined,
  rateLimits: [],
};

const DENOMINATORS = { HUNDRED: 100, TEN_THOUSAND: 10_000, MILLION: 1_000_000 } as const;

/** Request and response mutations for one weighted cluster (cluster level plus the enclosing levels). */
export interface ClusterMutations {
  readonly requestHeaders: HeaderMutation;
  readonly responseHeaders: HeaderMutation;
}

/**
 * How much of the path the route matched, for prefix_rewrite: the prefix length for prefix and
 * path_separated_prefix routes, -1 for "the whole path without query" (path and safe_regex routes).
 */
export type MatchedLength = number;

class Rewrite {
  readonly re: RegExp;
  readonly sub: string;
  constructor(c: RegexMatchAndSubstitute) {
    this.re = compileGlobal(c.pattern.regex);
    this.sub = translateSubstitution(c.substitution, groupCount(this.re));
  }
}

/** Rewrites the path part of `path` with prefix_rewrite or regex_rewrite; the query is kept. */
function rewrite(
  path: string,
  matched: MatchedLength,
  prefix: string | undefined,
  regex: Rewrite | undefined,
  keepQuery = true,
): string {
  const end = pathEnd(path);
  const rest = keepQuery ? path.slice(end) : "";
  if (prefix !== undefined) {
    return prefix + path.slice(matched < 0 ? end : Math.min(matched, end), end) + rest;
  }
  if (regex) return path.slice(0, end).replace(regex.re, regex.sub) + rest;
  return path.slice(0, end) + rest;
}

const enum C {
  Fixed,
  Header,
  Weighted,
}

/** A RouteAction entry. */
export class ForwardEntry implements RouteActionEntry, EntryCommon {
  readonly kind = "route" as const;
  readonly name: string;
  readonly matchDescription: string;
  readonly virtualHostName: string;
  readonly requestHeaders: HeaderMutation;
  readonly responseHeaders: HeaderMutation;
  readonly perFilterConfig: ReadonlyMap<string, unknown>;
  /** The route's decorator (kept for tracing), undefined when none. */
  readonly decorator: RouteDecorator | undefined;
  /** The route's tracing overrides (sampling, custom tags), undefined when none. */
  readonly tracing: RouteTracing | undefined;
  readonly hostRewriteLiteral: string | undefined;
  readonly autoHostRewrite: boolean;
  readonly timeoutMs: number;
  readonly idleTimeoutMs: number | undefined;
  readonly hasHashPolicy: boolean;
  readonly retryPolicy: RetryPolicy | null;
  readonly mirrorPolicies: readonly MirrorPolicy[];
  readonly priority: number;
  readonly bufferLimitBytes: number | undefined;
  readonly includeRequestAttemptCount: boolean;
  readonly includeAttemptCountInResponse: boolean;
  readonly rateLimits: readonly CompiledRateLimit[];
  #cluster: C;
  #name: string;
  #weights: number[] = [];
  #names: string[] = [];
  #total = 0;
  #matched: MatchedLength;
  #prefix: string | undefined;
  #regex: Rewrite | undefined;
  #hash: HashPolicies;
  #clusterMutations: ReadonlyMap<string, ClusterMutations>;
  /** The route's metadata_match criteria. */
  #criteria: MetadataMatchCriteria | null;
  /** Per weighted cluster (same order as #names): route criteria merged with its own; null when none has any. */
  #clusterCriteria: (MetadataMatchCriteria | null)[] | null = null;

  constructor(
    readonly config: RouteActionConfig,
    common: EntryCommon,
    matched: MatchedLength,
    clusterMutations: ReadonlyMap<string, ClusterMutations> = new Map(),
    defaults: ForwardDefaults = NO_DEFAULTS,
    routeBufferLimitBytes?: number,
  ) {
    this.retryPolicy = config.retry_policy ? new RetryPolicy(config.retry_policy) : defaults.retryPolicy;
    this.mirrorPolicies = config.request_mirror_policies.map((m) => ({
      cluster: m.cluster ?? "",
      clusterHeader: m.cluster_header?.toLowerCase() ?? "",
      fraction: m.runtime_fraction
        ? Math.min(
          1,
          m.runtime_fraction.default_value.numerator /
            DENOMINATORS[m.runtime_fraction.default_value.denominator],
        )
        : 1,
    }));
    this.priority = config.priority === "HIGH" ? 1 : 0;
    this.bufferLimitBytes = routeBufferLimitBytes ?? defaults.bufferLimitBytes;
    this.includeRequestAttemptCount = defaults.includeRequestAttemptCount;
    this.includeAttemptCountInResponse = defaults.includeAttemptCountInResponse;
    // Envoy: the virtual host's limits apply when the route has none or sets include_vh_rate_limits
    const own = compileRateLimits(config.rate_limits);
    this.rateLimits = own.length === 0 || config.include_vh_rate_limits
      ? [...own, ...defaults.rateLimits]
      : own;
    this.name = common.name;
    this.matchDescription = common.matchDescription;
    this.virtualHostName = common.virtualHostName;
    this.requestHeaders = common.requestHeaders;
    this.responseHeaders = common.responseHeaders;
    this.perFilterConfig = common.perFilterConfig;
    this.decorator = common.decorator;
    this.tracing = common.tracing;
    this.hostRewriteLiteral = config.host_rewrite_literal;
    this.autoHostRewrite = config.auto_host_rewrite ?? false;
    this.timeoutMs = config.timeout ?? DEFAULT_ROUTE_TIMEOUT_MS;
    this.idleTimeoutMs = config.idle_timeout;
    this.#hash = new HashPolicies(config.hash_policy);
    this.hasHashPolicy = config.hash_policy.length > 0;
    this.#matched = matched;
    this.#prefix = config.prefix_rewrite;
    this.#regex = config.regex_rewrite ? new Rewrite(config.regex_rewrite) : undefined;
    this.#clusterMutations = clusterMutations;
    if (config.cluster !== undefined) {
      this.#cluster = C.Fixed;
      this.#name = config.cluster;
    } else if (config.cluster_header !== undefined) {
      this.#cluster = C.Header;
      this.#name = config.cluster_header.toLowerCase();
    } else {
      this.#cluster = C.Weighted;
      this.#name = "";
      for (const c of config.weighted_clusters!.clusters) {
        this.#total += c.weight;
        this.#weights.push(this.#total);
        this.#names.push(c.name);
      }
    }
    this.#criteria = MetadataMatchCriteria.fromStruct(config.metadata_match?.filter_metadata[ENVOY_LB]);
    const weighted = config.weighted_clusters?.clusters;
    if (weighted !== undefined && weighted.some((c) => c.metadata_match !== undefined)) {
      // Envoy's WeightedClusterEntry: the cluster's envoy.lb fields override the route's
      this.#clusterCriteria = weighted.map((c) => {
        const own = c.metadata_match?.filter_metadata[ENVOY_LB];
        return own === undefined ? this.#criteria : mergeCriteria(this.#criteria, own);
      });
    }
  }

  /** Index of the weighted cluster `random` picks. */
  #weightedIndex(random: number): number {
    let pick = Math.floor(random * this.#total);
    if (pick >= this.#total) pick = this.#total - 1;
    if (pick < 0) pick = 0;
    const w = this.#weights;
    for (let i = 0; i < w.length; i++) if (pick < w[i]) return i;
    return w.length - 1;
  }

  selectCluster(req: RouteRequest, random: number): string {
    switch (this.#cluster) {
      case C.Fixed:
        return this.#name;
      case C.Header:
        return firstHeaderValue(req, this.#name) ?? "";
      case C.Weighted:
        return this.#names[this.#weightedIndex(random)];
    }
  }

  metadataMatchFor(random: number): MetadataMatchCriteria | null {
    const per = this.#clusterCriteria;
    return per === null ? this.#criteria : per[this.#weightedIndex(random)];
  }

  /**
   * The mutations to use once `cluster` is chosen: for a weighted cluster with its own
   * request/response headers, those levels applied first (most specific), then the route's; otherwise
   * this entry's requestHeaders/responseHeaders.
   */
  mutationsFor(cluster: string): ClusterMutations {
    return this.#clusterMutations.get(cluster) ?? this;
  }

  rewritePath(req: RouteRequest): string | undefined {
    if (this.#prefix === undefined && !this.#regex) return undefined;
    return rewrite(req.path, this.#matched, this.#prefix, this.#regex);
  }

  hash(req: RouteRequest, ctx: RouteContext): bigint | undefined {
    return this.hasHashPolicy ? this.#hash.hash(req, ctx) : undefined;
  }
}

/** Strips the port from a request host when Envoy's redirect rules say so. */
function redirectHost(host: string, newScheme: string, oldScheme: string, newPort: boolean): string {
  if (!host) return host;
  let end: number;
  if (host.charCodeAt(0) === 91 /* [ */) {
    end = host.lastIndexOf("]:");
    if (end >= 0) end += 1;
  } else {
    end = host.lastIndexOf(":");
  }
  if (end < 0) return host;
  const port = host.slice(end);
  let remove = newPort;
  if (newScheme !== oldScheme) {
    remove ||= (oldScheme === "https" && port === ":443") || (oldScheme === "http" && port === ":80");
  }
  return remove ? host.slice(0, end) : host;
}

/** A RedirectAction entry. */
export class RedirectEntryImpl implements RedirectEntry, EntryCommon {
  readonly kind = "redirect" as const;
  readonly name: string;
  readonly matchDescription: string;
  readonly virtualHostName: string;
  readonly requestHeaders: HeaderMutation;
  readonly responseHeaders: HeaderMutation;
  readonly perFilterConfig: ReadonlyMap<string, unknown>;
  /** The route's decorator (kept for tracing), undefined when none. */
  readonly decorator: RouteDecorator | undefined;
  /** The route's tracing overrides (sampling, custom tags), undefined when none. */
  readonly tracing: RouteTracing | undefined;
  #c: RedirectActionConfig;
  #scheme: string | undefined;
  #port: string;
  #regex: Rewrite | undefined;
  #matched: MatchedLength;

  constructor(config: RedirectActionConfig, common: EntryCommon, matched: MatchedLength) {
    this.name = common.name;
    this.matchDescription = common.matchDescription;
    this.virtualHostName = common.virtualHostName;
    this.requestHeaders = common.requestHeaders;
    this.responseHeaders = common.responseHeaders;
    this.perFilterConfig = common.perFilterConfig;
    this.decorator = common.decorator;
    this.tracing = common.tracing;
    this.#c = config;
    this.#scheme = config.https_redirect ? "https" : config.scheme_redirect?.toLowerCase();
    this.#port = config.port_redirect ? `:${config.port_redirect}` : "";
    this.#regex = config.regex_rewrite ? new Rewrite(config.regex_rewrite) : undefined;
    this.#matched = matched;
  }

  redirect(req: RouteRequest): { status: number; location: string } {
    const c = this.#c;
    const scheme = this.#scheme ?? req.scheme;
    const host = c.host_redirect
      ? c.host_redirect
      : redirectHost(req.authority, scheme, req.scheme, this.#port !== "");
    let path: string;
    if (c.path_redirect !== undefined) {
      // A query in path_redirect replaces the request's and is never stripped.
      path = c.path_redirect;
      if (!path.includes("?") && !c.strip_query) {
        const end = pathEnd(req.path);
        if (req.path.charCodeAt(end) === 63) path += req.path.slice(end);
      }
    } else {
      path = rewrite(req.path, this.#matched, c.prefix_rewrite, this.#regex, !c.strip_query);
    }
    return { status: c.response_code, location: `${scheme}://${host}${this.#port}${path}` };
  }
}

/** A DirectResponseAction entry. */
export class DirectEntry implements DirectResponseEntry, EntryCommon {
  readonly kind = "direct_response" as const;
  readonly name: string;
  readonly matchDescription: string;
  readonly virtualHostName: string;
  readonly requestHeaders: HeaderMutation;
  readonly responseHeaders: HeaderMutation;
  readonly perFilterConfig: ReadonlyMap<string, unknown>;
  /** The route's decorator (kept for tracing), undefined when none. */
  readonly decorator: RouteDecorator | undefined;
  /** The route's tracing overrides (sampling, custom tags), undefined when none. */
  readonly tracing: RouteTracing | undefined;

  constructor(readonly status: number, readonly body: Uint8Array, common: EntryCommon) {
    this.name = common.name;
    this.matchDescription = common.matchDescription;
    this.virtualHostName = common.virtualHostName;
    this.requestHeaders = common.requestHeaders;
    this.responseHeaders = common.responseHeaders;
    this.perFilterConfig = common.perFilterConfig;
    this.decorator = common.decorator;
    this.tracing = common.tracing;
  }
}
