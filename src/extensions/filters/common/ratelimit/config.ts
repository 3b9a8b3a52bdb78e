/** The `rate_limit_service` block both rate-limit filters share (envoy.config.ratelimit.v3.RateLimitServiceConfig). */
import { z } from "zod/mini";
import { duration } from "../../../../config/common.ts";
import { envoyEnum, notSupported } from "../../../../config/schema_util.ts";
import type { ClusterRef } from "../../../../registry/registry.ts";

/** envoy.config.ratelimit.v3.RateLimitServiceConfig (envoy_grpc only). */
export const rateLimitServiceSchema = z.strictObject({
  grpc_service: z.strictObject({
    envoy_grpc: z.strictObject({
      cluster_name: z.string().check(z.minLength(1)),
      authority: z.optional(z.string()),
      retry_policy: notSupported,
    }),
    timeout: z.optional(duration),
    initial_metadata: notSupported,
    google_grpc: notSupported,
    retry_policy: notSupported,
  }),
  transport_api_version: z.optional(envoyEnum(["V3", "AUTO"])),
});

/** Parsed rate_limit_service. */
export type RateLimitServiceConfig = z.infer<typeof rateLimitServiceSchema>;

/** The cluster a `rate_limit_service` names, for an extension's `clusterRefs` (runs once at load). */
export function rateLimitServiceClusterRefs(s: RateLimitServiceConfig): ClusterRef[] {
  return [{
    path: ["rate_limit_service", "grpc_service", "envoy_grpc", "cluster_name"],
    name: s.grpc_service.envoy_grpc.cluster_name,
  }];
}
