/**
 * zod schemas for envoy.config.route.v3.RouteConfiguration, VirtualHost and Route. Unknown fields
 * are errors; Envoy fields nuncio does not implement fail with "Field not supported by nuncio".
 * Regexes, header formatters and direct response bodies are checked here, so a config that parses
 * always compiles (compileRouteTable does not throw on parsed input).
 */
import { z } from "zod/mini";
import { routeTracingSchema } from "../../tracing/config.ts";
import { rateLimitSchema } from "./rate_limits.ts";
import { typedAny, uint32 } from "../../config/common.ts";
import { NOT_SUPPORTED } from "../../config/errors.ts";
import { envoyEnum, notSupportedFields, transformWithIssues } from "../../config/schema_util.ts";
import { registry } from "../../registry/registry.ts";
import {
  directResponseActionSchema,
  legacyCorsPolicy,
  redirectActionSchema,
  routeActionSchema,
} from "./config_action.ts";
import { routeMatchSchema } from "./config_match.ts";
import { perRequestBufferLimit, retryPolicySchema } from "./config_retry.ts";
import { exactlyOne, headersToAdd, headersToRemove } from "./config_util.ts";
import { LEGACY_CORS_KEY, type PerFilterConfig } from "./types.ts";

export * from "./config_action.ts";
export * from "./config_match.ts";

const FILTER_CONFIG_URL = "type.googleapis.com/envoy.config.route.v3.FilterConfig";

/**
 * typed_per_filter_config: filter name -> Any, each parsed by the per-route schema of the HTTP filter
 * registered for its "@type" (an envoy.config.route.v3.FilterConfig wrapper may mark it is_optional).
 * `location` is filled in by the route configuration schema once the whole config is parsed.
 */
const typedPerFilterConfig = z.pipe(
  z.record(z.string().check(z.minLength(1)), typedAny),
  transformWithIssues((m, ctx) => {
    const out: Record<string, PerFilterConfig & { location: string }> = {};
    for (const name of Object.keys(m)) {
      let { "@type": typeUrl, ...rest } = m[name] as Record<string, unknown> & { "@type": string };
      let optional = false;
      let path: string[] = [name];
      if (typeUrl === FILTER_CONFIG_URL) {
        const { config, is_optional, disabled, ...extra } = rest;
        const bad = Object.keys(extra)[0] ?? (disabled !== undefined ? "disabled" : undefined);
        const inner = typedAny.safeParse(config);
        if (bad || !inner.success) {
          ctx.addIssue({
            code: "custom",
            path: [name, bad ?? "config"],
            message: bad === "disabled"
              ? NOT_SUPPORTED
              : bad
              ? "Unknown field"
              : "Expected a typed config with @type",
          });
          continue;
        }
        optional = is_optional === true;
        ({ "@type": typeUrl, ...rest } = inner.data);
        path = [name, "config"];
      }
      const ext = registry.findPerRoute(typeUrl);
      if (!ext) {
        if (!optional) {
          ctx.addIssue({
            code: "custom",
            path: [...path, "@type"],
            message: `Unknown or unsupported per-route HTTP filter config "${typeUrl}"`,
          });
        }
        continue;
      }
      const r = ext.perRouteSchema!.safeParse(rest);
      if (!r.success) {
        for (const i of r.error.issues) {
          ctx.addIssue({ code: "custom", path: [...path, ...i.path], message: i.message });
        }
        continue;
      }
      out[name] = { config: r.data, location: "" };
    }
    return out;
  }),
);

/**
 * Stamps each parsed typed_per_filter_config entry with where it was declared and links it to the entry of the
 * same name one level up (`up`, else `top`).
 */
function stampLocations(
  m: Record<string, { location: string }>,
  location: string,
  up?: Record<string, PerFilterConfig>,
  top?: Record<string, PerFilterConfig>,
): void {
  for (const k in m) {
    m[k].location = location;
    const parent = up?.[k] ?? top?.[k];
    if (parent) (m[k] as { parent?: PerFilterConfig }).parent = parent;
  }
}

const headerMutationFields = {
  request_headers_to_add: z._default(headersToAdd, []),
  request_headers_to_remove: z._default(headersToRemove, []),
  response_headers_to_add: z._default(headersToAdd, []),
  response_headers_to_remove: z._default(headersToRemove, []),
};

/** envoy.config.route.v3.Route. */
export const routeSchema = z.strictObject({
  name: z._default(z.string(), ""),
  match: routeMatchSchema,
  route: z.optional(routeActionSchema),
  redirect: z.optional(redirectActionSchema),
  direct_response: z.optional(directResponseActionSchema),
  ...headerMutationFields,
  typed_per_filter_config: z._default(typedPerFilterConfig, {}),
  per_request_buffer_limit_bytes: perRequestBufferLimit,
  /** envoy.config.route.v3.Tracing: the route's sampling overrides and custom tags. */
  tracing: z.optional(routeTracingSchema),
  /** envoy.config.route.v3.Decorator: the operation name of the request's span. */
  decorator: z.optional(z.strictObject({
    operation: z.string().check(z.minLength(1)),
    propagate: z._default(z.boolean(), true),
  })),
  ...notSupportedFields([
    "filter_action",
    "non_forwarding_action",
    "metadata",
    "request_body_buffer_limit",
    "stat_prefix",
  ]),
}).check(z.superRefine((v, ctx) => exactlyOne(v, ["route", "redirect", "direct_response"], ctx)));

/** The parsed form of a Route. */
export type RouteConfig = z.infer<typeof routeSchema>;

/** envoy.config.route.v3.VirtualHost. */
export const virtualHostSchema = z.strictObject({
  name: z.string().check(z.minLength(1)),
  domains: z.array(z.string().check(z.minLength(1))).check(z.minLength(1)),
  routes: z._default(z.array(routeSchema), []),
  require_tls: z._default(envoyEnum(["NONE", "EXTERNAL_ONLY", "ALL"]), "NONE").check(
    z.superRefine((v, ctx) => {
      if (v !== "NONE") ctx.addIssue({ code: "custom", message: `${NOT_SUPPORTED}: only NONE is supported` });
    }),
  ),
  ...headerMutationFields,
  typed_per_filter_config: z._default(typedPerFilterConfig, {}),
  retry_policy: z.optional(retryPolicySchema),
  include_request_attempt_count: z._default(z.boolean(), false),
  include_attempt_count_in_response: z._default(z.boolean(), false),
  per_request_buffer_limit_bytes: perRequestBufferLimit,
  rate_limits: z._default(z.array(rateLimitSchema), []),
  /** Deprecated in Envoy (typed_per_filter_config replaces it) but honoured; see legacyCorsPolicy. */
  cors: z.optional(legacyCorsPolicy),
  ...notSupportedFields([
    "virtual_clusters",
    "retry_policy_typed_config",
    "hedge_policy",
    "request_body_buffer_limit",
    "request_mirror_policies",
    "matcher",
    "metadata",
  ]),
}).check(z.superRefine((v, ctx) => {
  v.domains.forEach((d, i) => {
    if (d !== "*" && d.indexOf("*") !== d.lastIndexOf("*")) {
      ctx.addIssue({ code: "custom", path: ["domains", i], message: "Only one wildcard is allowed" });
    } else if (d.length > 1 && d.includes("*") && !d.startsWith("*") && !d.endsWith("*")) {
      ctx.addIssue({
        code: "custom",
        path: ["domains", i],
        message: "A wildcard must be the first or last character",
      });
    }
  });
}));

/** The parsed form of a VirtualHost. */
export type VirtualHostConfig = z.infer<typeof virtualHostSchema>;

/** Envoy's default limit on a direct response body. */
export const DEFAULT_MAX_DIRECT_RESPONSE_BODY = 4096;

/** envoy.config.route.v3.RouteConfiguration. */
export const routeConfigurationSchema = z.pipe(
  z.strictObject({
    name: z._default(z.string(), ""),
    virtual_hosts: z._default(z.array(virtualHostSchema), []),
    ...headerMutationFields,
    most_specific_header_mutations_wins: z._default(z.boolean(), false),
    /** Accepted; cluster existence is checked by whoever owns the cluster manager. */
    validate_clusters: z.optional(z.boolean()),
    ignore_port_in_host_matching: z._default(z.boolean(), false),
    max_direct_response_body_size_bytes: z._default(uint32, DEFAULT_MAX_DIRECT_RESPONSE_BODY),
    typed_per_filter_config: z._default(typedPerFilterConfig, {}),
    ...notSupportedFields([
      "vhds",
      "internal_only_headers",
      "cluster_specifier_plugins",
      "request_mirror_policies",
      "vhost_header",
      "alternate_header_for_host_matching",
      "ignore_path_parameters_in_path_matching",
      "metadata",
    ]),
  }).check(z.superRefine((v, ctx) => {
    // A domain must be unique across all virtual hosts (case-insensitive).
    const seen = new Map<string, number>();
    v.virtual_hosts.forEach((vh, i) => {
      vh.domains.forEach((d, j) => {
        const key = d.toLowerCase();
        const prev = seen.get(key);
        if (prev !== undefined) {
          ctx.addIssue({
            code: "custom",
            path: ["virtual_hosts", i, "domains", j],
            message: `Domain "${d}" is also in virtual host "${v.virtual_hosts[prev].name}"`,
          });
        } else seen.set(key, i);
      });
      vh.routes.forEach((r, k) => {
        const len = r.direct_response?.body.length ?? 0;
        if (len > v.max_direct_response_body_size_bytes) {
          ctx.addIssue({
            code: "custom",
            path: ["virtual_hosts", i, "routes", k, "direct_response", "body"],
            message:
              `Body is ${len} bytes, over max_direct_response_body_size_bytes (${v.max_direct_response_body_size_bytes})`,
          });
        }
      });
    });
  })),
  z.transform((v) => {
    const top = v.typed_per_filter_config;
    stampLocations(top, v.name);
    for (const vh of v.virtual_hosts) {
      const at = `${v.name}/${vh.name}`;
      const vhf = vh.typed_per_filter_config;
      // the deprecated cors fields ride along as per-filter entries the CORS filter reads (LEGACY_CORS_KEY)
      if (vh.cors !== undefined) vhf[LEGACY_CORS_KEY] = { config: vh.cors, location: "" };
      stampLocations(vhf, at, top);
      vh.routes.forEach((r, i) => {
        const rf = r.typed_per_filter_config;
        if (r.route?.cors !== undefined) rf[LEGACY_CORS_KEY] = { config: r.route.cors, location: "" };
        stampLocations(rf, `${at}/${i}`, vhf, top);
      });
    }
    return v;
  }),
);

/** The parsed form of a RouteConfiguration (durations in ms, direct response bodies as bytes). */
export type RouteConfiguration = z.infer<typeof routeConfigurationSchema>;

/** The input (YAML/JSON) form of a RouteConfiguration. */
export type RouteConfigurationInput = z.input<typeof routeConfigurationSchema>;
