/** Config of envoy.filters.network.redis_proxy (envoy.extensions.filters.network.redis_proxy.v3.RedisProxy). */
import { z } from "zod/mini";
import { duration, fractionalPercent, uint32 } from "../../../../config/common.ts";
import { notSupported, notSupportedFields, onlyValues } from "../../../../config/schema_util.ts";
import { dataSource } from "../../../../transport/tls_config.ts";

/**
 * The schemas, built the first time a config names this extension: zod objects cost every isolate (main and
 * each worker) memory, and most bootstraps never name it.
 */
function build() {
  /** RedisProxy.PrefixRoutes.Route.RequestMirrorPolicy. */
  const mirrorPolicy = z.strictObject({
    cluster: z.string().check(z.minLength(1)),
    runtime_fraction: z.optional(z.strictObject({
      default_value: fractionalPercent,
      runtime_key: z._default(z.string(), ""),
    })),
    exclude_read_commands: z._default(z.boolean(), false),
  });

  /** RedisProxy.PrefixRoutes.Route. */
  const route = z.strictObject({
    prefix: z._default(z.string().check(z.maxLength(1000)), ""),
    remove_prefix: z._default(z.boolean(), false),
    cluster: z.string().check(z.minLength(1)),
    request_mirror_policy: z._default(z.array(mirrorPolicy), []),
    read_command_policy: z.optional(z.strictObject({ cluster: z.string().check(z.minLength(1)) })),
    key_formatter: onlyValues([""], "keys are forwarded as sent"),
  });

  /** The RedisProxy message. */
  const redisProxySchema = z.strictObject({
    stat_prefix: z.string().check(z.minLength(1)),
    settings: z.strictObject({
      op_timeout: duration,
      enable_hashtagging: z._default(z.boolean(), false),
      enable_redirection: onlyValues([false], "MOVED/ASK errors are passed to the client"),
      max_buffer_size_before_flush: z._default(uint32, 0),
      buffer_flush_timeout: z.optional(duration),
      max_upstream_unknown_connections: z.optional(uint32),
      enable_command_stats: z._default(z.boolean(), false),
      read_policy: onlyValues(["MASTER", "PRIMARY"], "reads go to the hashed host"),
      ...notSupportedFields(["dns_cache_config", "connection_rate_limit"]),
    }),
    latency_in_micros: z._default(z.boolean(), false),
    prefix_routes: z.strictObject({
      routes: z._default(z.array(route), []),
      case_insensitive: z._default(z.boolean(), false),
      catch_all_route: z.optional(route),
    }),
    downstream_auth_password: z.optional(dataSource),
    downstream_auth_passwords: z._default(z.array(dataSource), []),
    downstream_auth_username: z.optional(dataSource),
    custom_commands: z._default(z.array(z.string().check(z.minLength(1))), []),
    faults: notSupported,
    external_auth_provider: notSupported,
    cluster: z.optional(
      z.never({ error: "Field removed in Envoy's v3 API: use prefix_routes.catch_all_route" }),
    ),
  }).check(z.superRefine((c, ctx) => {
    if (c.prefix_routes.routes.length === 0 && c.prefix_routes.catch_all_route === undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["prefix_routes"],
        message: "At least one route or a catch_all_route is required",
        input: c.prefix_routes,
      });
    }
    const seen = new Set<string>();
    c.prefix_routes.routes.forEach((r, i) => {
      const p = c.prefix_routes.case_insensitive ? r.prefix.toLowerCase() : r.prefix;
      if (seen.has(p)) {
        ctx.addIssue({
          code: "custom",
          path: ["prefix_routes", "routes", i, "prefix"],
          message: `prefix \`${r.prefix}\` already exists.`,
          input: r.prefix,
        });
      }
      seen.add(p);
    });
  }));
  return { route, redisProxySchema };
}

type Schemas = ReturnType<typeof build>;
let built: Schemas | undefined;
const schemas = (): Schemas => built ??= build();

/** The RedisProxy message (see build()). */
export const redisProxySchema: Schemas["redisProxySchema"] = z.lazy(() =>
  schemas().redisProxySchema
) as unknown as Schemas["redisProxySchema"];

/** The parsed Route. */
export type RedisRouteConfig = z.output<Schemas["route"]>;

/** The parsed RedisProxy config. */
export type RedisProxyConfig = z.output<typeof redisProxySchema>;

/** Every cluster the config names, with its path (for the registry's cluster cross-check). */
export function redisClusterRefs(c: RedisProxyConfig): { path: (string | number)[]; name: string }[] {
  const out: { path: (string | number)[]; name: string }[] = [];
  const visit = (r: RedisRouteConfig, path: (string | number)[]) => {
    out.push({ path: [...path, "cluster"], name: r.cluster });
    r.request_mirror_policy.forEach((m, i) =>
      out.push({ path: [...path, "request_mirror_policy", i, "cluster"], name: m.cluster })
    );
    if (r.read_command_policy) {
      out.push({ path: [...path, "read_command_policy", "cluster"], name: r.read_command_policy.cluster });
    }
  };
  c.prefix_routes.routes.forEach((r, i) => visit(r, ["prefix_routes", "routes", i]));
  if (c.prefix_routes.catch_all_route) {
    visit(c.prefix_routes.catch_all_route, ["prefix_routes", "catch_all_route"]);
  }
  return out;
}
