/** Config of envoy.filters.network.ratelimit (envoy.extensions.filters.network.ratelimit.v3.RateLimit). */
import { z } from "zod";
import { duration } from "../../../../config/common.ts";
import { notSupportedFields } from "../../../../config/schema_util.ts";
import { rateLimitServiceSchema } from "../../common/ratelimit/config.ts";

/** The network RateLimit message. */
export const networkRateLimitSchema = z.strictObject({
  stat_prefix: z.string().min(1),
  domain: z.string().min(1),
  descriptors: z.array(z.strictObject({
    entries: z.array(z.strictObject({ key: z.string().min(1), value: z.string().min(1) })).min(1),
    limit: z.never().optional(),
    hits_addend: z.never().optional(),
  })).min(1),
  timeout: duration.optional(),
  failure_mode_deny: z.boolean().optional(),
  rate_limit_service: rateLimitServiceSchema,
  ...notSupportedFields(["substitution_formatter", "ip_white_list"]),
});

/** Parsed network rate limit filter config. */
export type NetworkRateLimitConfig = z.infer<typeof networkRateLimitSchema>;
