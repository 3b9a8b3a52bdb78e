/** Config of envoy.filters.http.ratelimit (envoy.extensions.filters.http.ratelimit.v3.RateLimit). */
import { z } from "zod";
import { duration, uint32 } from "../../../../config/common.ts";
import { notSupportedFields } from "../../../../config/schema_util.ts";
import { rateLimitServiceSchema } from "../../common/ratelimit/config.ts";

const httpStatus = z.strictObject({ code: z.number().int().min(100).max(599) });

/** The RateLimit message of the HTTP filter. */
export const httpRateLimitSchema = z.strictObject({
  domain: z.string().min(1),
  stage: uint32.max(10).optional(),
  request_type: z.enum(["internal", "external", "both"]).optional(),
  timeout: duration.optional(),
  failure_mode_deny: z.boolean().optional(),
  rate_limited_as_resource_exhausted: z.boolean().optional(),
  rate_limit_service: rateLimitServiceSchema,
  enable_x_ratelimit_headers: z.enum(["OFF", "DRAFT_VERSION_03"]).optional(),
  disable_x_envoy_ratelimited_header: z.boolean().optional(),
  rate_limited_status: httpStatus.optional(),
  status_on_error: httpStatus.optional(),
  stat_prefix: z.string().optional(),
  ...notSupportedFields([
    "response_headers_to_add",
    "vh_rate_limits",
    "failure_mode_deny_percent",
    "rate_limited_status_on_error",
  ]),
});

/** Parsed HTTP rate limit filter config. */
export type HttpRateLimitConfig = z.infer<typeof httpRateLimitSchema>;
