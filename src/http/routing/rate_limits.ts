/**
 * Route and virtual host `rate_limits` (envoy.config.route.v3.RateLimit): the schema, and the compiled form
 * that turns one request into the descriptors sent to the rate-limit service. Compiled once per route config;
 * per request it only reads headers.
 */
import { z } from "zod/mini";
import { uint32 } from "../../config/common.ts";
import { notSupported, notSupportedFields } from "../../config/schema_util.ts";
import { headerMatcherSchema } from "./config_match.ts";
import { firstHeaderValue, HeaderMatch } from "./matchers.ts";
import type { RouteRequest } from "./types.ts";

const emptyObject = z.strictObject({});

const actionSchema = z.strictObject({
  source_cluster: z.optional(emptyObject),
  destination_cluster: z.optional(emptyObject),
  request_headers: z.optional(z.strictObject({
    header_name: z.string().check(z.minLength(1)),
    descriptor_key: z.string().check(z.minLength(1)),
    skip_if_absent: z.optional(z.boolean()),
  })),
  remote_address: z.optional(emptyObject),
  generic_key: z.optional(z.strictObject({
    descriptor_value: z.string().check(z.minLength(1)),
    descriptor_key: z.optional(z.string()),
  })),
  header_value_match: z.optional(z.strictObject({
    descriptor_key: z.optional(z.string()),
    descriptor_value: z.string().check(z.minLength(1)),
    expect_match: z.optional(z.boolean()),
    headers: z.array(headerMatcherSchema).check(z.minLength(1)),
  })),
  ...notSupportedFields([
    "dynamic_metadata",
    "metadata",
    "extension",
    "masked_remote_address",
    "query_parameter_value_match",
    "query_parameters",
  ]),
}).check(z.superRefine((a, ctx) => {
  const set = Object.entries(a).filter(([, v]) => v !== undefined).length;
  if (set !== 1) ctx.addIssue({ code: "custom", message: "Exactly one rate limit action must be set" });
}));

/** envoy.config.route.v3.RateLimit. */
export const rateLimitSchema = z.strictObject({
  stage: z.optional(uint32.check(z.maximum(10))),
  disable_key: z.optional(z.string()),
  actions: z.array(actionSchema).check(z.minLength(1)),
  limit: notSupported,
  apply_on_stream_done: notSupported,
  hits_addend: notSupported,
});

/** One parsed route/vhost rate limit. */
export type RateLimitConfig = z.infer<typeof rateLimitSchema>;

/** One descriptor entry. */
export interface DescriptorEntry {
  key: string;
  value: string;
}

/** What the descriptor actions read besides the request. */
export interface DescriptorContext {
  /** The local service cluster (bootstrap node.cluster). */
  localServiceCluster: string;
  /** The route's target cluster. */
  destinationCluster: string;
  /** Trusted downstream address (after x-forwarded-for handling). */
  remoteIp: string;
}

const enum Kind {
  SourceCluster,
  DestinationCluster,
  RequestHeader,
  RemoteAddress,
  GenericKey,
  HeaderValueMatch,
}

interface CompiledAction {
  kind: Kind;
  key: string;
  value: string;
  header: string;
  skipIfAbsent: boolean;
  expectMatch: boolean;
  matchers: HeaderMatch[];
}

/** One compiled RateLimit: its stage and actions. */
export class CompiledRateLimit {
  readonly stage: number;
  /** disable_key: the ratelimit filter skips this limit unless `ratelimit.<key>.http_filter_enabled` (runtime). */
  readonly disableKey: string;
  readonly #actions: CompiledAction[];

  constructor(c: RateLimitConfig) {
    this.stage = c.stage ?? 0;
    this.disableKey = c.disable_key ?? "";
    this.#actions = c.actions.map(compileAction);
  }

  /**
   * Appends this limit's descriptor to `out` (per request). Returns false, adding nothing, when an action
   * produces no entry (a missing header without skip_if_absent, a header_value_match that does not hold), as
   * Envoy then skips the whole descriptor.
   */
  populate(req: RouteRequest, ctx: DescriptorContext, out: DescriptorEntry[][]): boolean {
    const entries: DescriptorEntry[] = [];
    for (const a of this.#actions) {
      switch (a.kind) {
        case Kind.SourceCluster:
          entries.push({ key: "source_cluster", value: ctx.localServiceCluster });
          break;
        case Kind.DestinationCluster:
          entries.push({ key: "destination_cluster", value: ctx.destinationCluster });
          break;
        case Kind.RequestHeader: {
          const v = firstHeaderValue(req, a.header);
          if (v === undefined) {
            if (a.skipIfAbsent) continue;
            return false;
          }
          entries.push({ key: a.key, value: v });
          break;
        }
        case Kind.RemoteAddress:
          if (ctx.remoteIp === "") return false;
          entries.push({ key: "remote_address", value: ctx.remoteIp });
          break;
        case Kind.GenericKey:
          entries.push({ key: a.key, value: a.value });
          break;
        case Kind.HeaderValueMatch: {
          let all = true;
          for (const m of a.matchers) {
            if (!m.match(req)) {
              all = false;
              break;
            }
          }
          if (all !== a.expectMatch) return false;
          entries.push({ key: a.key, value: a.value });
          break;
        }
      }
    }
    if (entries.length === 0) return false;
    out.push(entries);
    return true;
  }
}

function compileAction(a: z.infer<typeof actionSchema>): CompiledAction {
  const base: CompiledAction = {
    kind: Kind.SourceCluster,
    key: "",
    value: "",
    header: "",
    skipIfAbsent: false,
    expectMatch: true,
    matchers: [],
  };
  if (a.source_cluster) return base;
  if (a.destination_cluster) return { ...base, kind: Kind.DestinationCluster };
  if (a.request_headers) {
    return {
      ...base,
      kind: Kind.RequestHeader,
      key: a.request_headers.descriptor_key,
      header: a.request_headers.header_name.toLowerCase(),
      skipIfAbsent: a.request_headers.skip_if_absent ?? false,
    };
  }
  if (a.remote_address) return { ...base, kind: Kind.RemoteAddress };
  if (a.generic_key) {
    return {
      ...base,
      kind: Kind.GenericKey,
      key: a.generic_key.descriptor_key || "generic_key",
      value: a.generic_key.descriptor_value,
    };
  }
  const h = a.header_value_match!;
  return {
    ...base,
    kind: Kind.HeaderValueMatch,
    key: h.descriptor_key || "header_match",
    value: h.descriptor_value,
    expectMatch: h.expect_match ?? true,
    matchers: h.headers.map((m) => new HeaderMatch(m)),
  };
}

/** Compiles a list of rate limits (a route's or a virtual host's). */
export function compileRateLimits(list: readonly RateLimitConfig[] | undefined): CompiledRateLimit[] {
  return (list ?? []).map((c) => new CompiledRateLimit(c));
}
