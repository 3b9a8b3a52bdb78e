/** Config of envoy.filters.network.ratelimit (envoy.extensions.filters.network.ratelimit.v3.RateLimit). */
import { z } from "zod/mini";
import { duration } from "../../../../config/common.ts";
import { notSupportedFields } from "../../../../config/schema_util.ts";
import { rateLimitServiceSchema } from "../../common/ratelimit/config.ts";

/** The network RateLimit message. */
export const networkRateLimitSchema = z.strictObject({
  stat_prefix: z.string().check(z.minLength(1)),
  domain: z.string().check(z.minLength(1)),
  descriptors: z.array(z.strictObject({
    entries: z.array(
      z.strictObject({ key: z.string().check(z.minLength(1)), value: z.string().check(z.minLength(1)) }),
    ).check(z.minLength(1)),
    limit: z.optional(z.never()),
    hits_addend: z.optional(z.never()),
  })).check(z.minLength(1)),
  timeout: z.optional(duration),
  failure_mode_deny: z.optional(z.boolean()),
  rate_limit_service: rateLimitServiceSchema,
  ...notSupportedFields(["substitution_formatter", "ip_white_list"]),
});

/** Parsed network rate limit filter config. */
export type NetworkRateLimitConfig = z.infer<typeof networkRateLimitSchema>;
