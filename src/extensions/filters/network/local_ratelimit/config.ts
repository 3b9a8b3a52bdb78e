/** Config of envoy.filters.network.local_ratelimit (envoy.extensions.filters.network.local_ratelimit.v3.LocalRateLimit). */
import { z } from "zod/mini";
import { runtimeFeatureFlagSchema, tokenBucketSchema } from "../../common/config.ts";

/** The network LocalRateLimit message. */
export const networkLocalRateLimitSchema = z.strictObject({
  stat_prefix: z.string().check(z.minLength(1)),
  token_bucket: tokenBucketSchema,
  runtime_enabled: z.optional(runtimeFeatureFlagSchema),
  /** Filters with the same share_key (in any listener) share one bucket. */
  share_key: z.optional(z.string()),
});

/** The parsed network LocalRateLimit config. */
export type NetworkLocalRateLimitConfig = z.infer<typeof networkLocalRateLimitSchema>;
