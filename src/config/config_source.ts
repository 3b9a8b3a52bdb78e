/** envoy.config.core.v3.ConfigSource / ApiConfigSource and the bootstrap's dynamic_resources (xDS sources). */
import { z } from "zod/mini";
import { double, envoyEnum, notSupportedFields } from "./schema_util.ts";
import { duration, uint32 } from "./common.ts";

const V3_ONLY = "Only V3 is supported (Envoy removed the v2 xDS API)";

/** An xDS API version enum (transport_api_version / resource_api_version): V3, or AUTO which now means V3. */
const apiVersion = z.optional(
  envoyEnum(["AUTO", "V2", "V3"]).check(z.refine((v) => v !== "V2", { error: V3_ONLY })),
);

/** envoy.config.core.v3.GrpcService (envoy_grpc only: a gRPC service on a cluster of the bootstrap). */
export const grpcServiceSchema = z.strictObject({
  envoy_grpc: z.strictObject({
    cluster_name: z.string().check(z.minLength(1)),
    authority: z.optional(z.string()),
    ...notSupportedFields(["retry_policy", "max_receive_message_length", "skip_envoy_headers"]),
  }),
  timeout: z.optional(duration),
  ...notSupportedFields(["google_grpc", "initial_metadata", "retry_policy"]),
});

/** envoy.config.core.v3.RateLimitSettings (token bucket on discovery requests). */
export const rateLimitSettingsSchema = z.strictObject({
  max_tokens: z._default(uint32, 100),
  fill_rate: z._default(double.check(z.gt(0)), 10),
});

/** envoy.config.core.v3.ApiConfigSource: REST polling or a gRPC stream to a cluster of static_resources. */
export const apiConfigSourceSchema = z.strictObject({
  api_type: envoyEnum(["REST", "GRPC", "DELTA_GRPC"]),
  transport_api_version: apiVersion,
  cluster_names: z._default(z.array(z.string().check(z.minLength(1))), []),
  grpc_services: z._default(z.array(grpcServiceSchema), []),
  refresh_delay: z._default(duration, 1000),
  request_timeout: z._default(
    duration.check(z.refine((ms) => ms > 0, "request_timeout must be positive")),
    1000,
  ),
  rate_limit_settings: z.optional(rateLimitSettingsSchema),
  set_node_on_first_message_only: z._default(z.boolean(), false),
  ...notSupportedFields(["config_validators"]),
}).check(
  z.superRefine((s, ctx) => {
    if (s.api_type === "REST") {
      if (s.grpc_services.length) {
        ctx.addIssue({
          code: "custom",
          path: ["grpc_services"],
          message: "REST takes cluster_names, not grpc_services",
        });
      }
      if (s.cluster_names.length !== 1) {
        ctx.addIssue({
          code: "custom",
          path: ["cluster_names"],
          message: "REST needs exactly one cluster name",
        });
      }
    } else {
      if (s.cluster_names.length) {
        ctx.addIssue({
          code: "custom",
          path: ["cluster_names"],
          message: `${s.api_type} takes grpc_services, not cluster_names`,
        });
      }
      if (s.grpc_services.length !== 1) {
        ctx.addIssue({
          code: "custom",
          path: ["grpc_services"],
          message: `${s.api_type} needs exactly one grpc_services entry`,
        });
      }
    }
  }),
);

/**
 * An ApiConfigSource that names a gRPC stream of a service other than xDS (the bootstrap's hds_config and
 * cluster_manager.load_stats_config): api_type GRPC with one envoy_grpc service, as Envoy requires.
 */
export const grpcServiceConfigSourceSchema = apiConfigSourceSchema.check(
  z.superRefine((s, ctx) => {
    if (s.api_type !== "GRPC") {
      ctx.addIssue({
        code: "custom",
        path: ["api_type"],
        message: `api_type must be GRPC (a bidirectional gRPC stream), not ${s.api_type}`,
      });
    }
  }),
);

/** envoy.config.core.v3.PathConfigSource: a DiscoveryResponse file, reloaded when moved into place. */
export const pathConfigSourceSchema = z.strictObject({
  path: z.string().check(z.minLength(1)),
  /** Reload on any move into this directory (Kubernetes ConfigMap symlink swaps), not only onto `path`. */
  watched_directory: z.optional(z.strictObject({ path: z.string().check(z.minLength(1)) })),
});

/** envoy.config.core.v3.ConfigSource: exactly one of ads, api_config_source, path_config_source, path. */
export const configSourceSchema = z.strictObject({
  ads: z.optional(z.strictObject({})),
  api_config_source: z.optional(apiConfigSourceSchema),
  path_config_source: z.optional(pathConfigSourceSchema),
  /** Deprecated in Envoy: the same as path_config_source {path}. */
  path: z.optional(z.string().check(z.minLength(1))),
  /** 0 disables it; Envoy's default is 15 s. */
  initial_fetch_timeout: z._default(duration, 15_000),
  resource_api_version: apiVersion,
  ...notSupportedFields(["self", "authorities"]),
}).check(
  z.refine(
    (s) =>
      [s.ads, s.api_config_source, s.path_config_source, s.path].filter((x) => x !== undefined).length === 1,
    { error: "Exactly one of ads, api_config_source, path_config_source, path must be set" },
  ),
);

/** envoy.config.bootstrap.v3.Bootstrap.DynamicResources. */
export const dynamicResourcesSchema = z.strictObject({
  lds_config: z.optional(configSourceSchema),
  cds_config: z.optional(configSourceSchema),
  ads_config: z.optional(apiConfigSourceSchema),
  ...notSupportedFields(["lds_resources_locator", "cds_resources_locator"]),
}).check(
  z.superRefine((d, ctx) => {
    for (const key of ["lds_config", "cds_config"] as const) {
      if (d[key]?.ads && !d.ads_config) {
        ctx.addIssue({
          code: "custom",
          path: [key, "ads"],
          message: "ads needs dynamic_resources.ads_config",
        });
      }
    }
    if (d.ads_config?.api_type === "REST") {
      ctx.addIssue({
        code: "custom",
        path: ["ads_config", "api_type"],
        message: "ads_config must be GRPC or DELTA_GRPC (ADS is a gRPC stream)",
      });
    }
  }),
);

/** A parsed ConfigSource (durations in ms, defaults filled). */
export type ConfigSource = z.output<typeof configSourceSchema>;
/** A parsed ApiConfigSource. */
export type ApiConfigSource = z.output<typeof apiConfigSourceSchema>;
/** A parsed PathConfigSource. */
export type PathConfigSource = z.output<typeof pathConfigSourceSchema>;
/** A parsed GrpcService. */
export type GrpcServiceConfig = z.output<typeof grpcServiceSchema>;
/** The parsed bootstrap dynamic_resources. */
export type DynamicResources = z.output<typeof dynamicResourcesSchema>;
