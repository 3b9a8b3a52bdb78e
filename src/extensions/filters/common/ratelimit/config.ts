/** The `rate_limit_service` block both rate-limit filters share (envoy.config.ratelimit.v3.RateLimitServiceConfig). */
import { z } from "zod";
import { duration } from "../../../../config/common.ts";
import { notSupported } from "../../../../config/schema_util.ts";

/** envoy.config.ratelimit.v3.RateLimitServiceConfig (envoy_grpc only). */
export const rateLimitServiceSchema = z.strictObject({
  grpc_service: z.strictObject({
    envoy_grpc: z.strictObject({
      cluster_name: z.string().min(1),
      authority: z.string().optional(),
      retry_policy: notSupported,
    }),
    timeout: duration.optional(),
    initial_metadata: notSupported,
    google_grpc: notSupported,
    retry_policy: notSupported,
  }),
  transport_api_version: z.enum(["V3", "AUTO"]).optional(),
});

/** Parsed rate_limit_service. */
export type RateLimitServiceConfig = z.infer<typeof rateLimitServiceSchema>;
