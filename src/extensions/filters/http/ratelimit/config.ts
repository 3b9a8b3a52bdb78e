/** Config of envoy.filters.http.ratelimit (envoy.extensions.filters.http.ratelimit.v3.RateLimit). */
import { z } from "zod/mini";
import { duration, uint32 } from "../../../../config/common.ts";
import { envoyEnum, integer, notSupportedFields } from "../../../../config/schema_util.ts";
import { rateLimitServiceSchema } from "../../common/ratelimit/config.ts";
import { runtimeFractionalPercentSchema } from "../../common/config.ts";

const httpStatus = z.strictObject({ code: integer.check(z.minimum(100), z.maximum(599)) });

/** The RateLimit message of the HTTP filter. */
export const httpRateLimitSchema = z.strictObject({
  domain: z.string().check(z.minLength(1)),
  stage: z.optional(uint32.check(z.maximum(10))),
  request_type: z.optional(z.enum(["internal", "external", "both"])),
  timeout: z.optional(duration),
  failure_mode_deny: z.optional(z.boolean()),
  rate_limited_as_resource_exhausted: z.optional(z.boolean()),
  rate_limit_service: rateLimitServiceSchema,
  enable_x_ratelimit_headers: z.optional(envoyEnum(["OFF", "DRAFT_VERSION_03"])),
  disable_x_envoy_ratelimited_header: z.optional(z.boolean()),
  rate_limited_status: z.optional(httpStatus),
  status_on_error: z.optional(httpStatus),
  stat_prefix: z.optional(z.string()),
  /** Absent: the runtime key ratelimit.http_filter_enabled decides (default 100 %), as Envoy. */
  filter_enabled: z.optional(runtimeFractionalPercentSchema),
  /** Absent: the runtime key ratelimit.http_filter_enforcing decides (default 100 %), as Envoy. */
  filter_enforced: z.optional(runtimeFractionalPercentSchema),
  ...notSupportedFields([
    "response_headers_to_add",
    "vh_rate_limits",
    "failure_mode_deny_percent",
    "rate_limited_status_on_error",
  ]),
});

/** Parsed HTTP rate limit filter config. */
export type HttpRateLimitConfig = z.infer<typeof httpRateLimitSchema>;
