/** Config of envoy.filters.http.local_ratelimit (envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit). */
import { z } from "zod";
import { headerValueOption, uint32 } from "../../../../config/common.ts";
import { NOT_SUPPORTED } from "../../../../config/errors.ts";
import { notSupportedFields } from "../../../../config/schema_util.ts";
import { runtimeFractionalPercentSchema, tokenBucketSchema } from "../../common/config.ts";

/** The LocalRateLimit message (also its per-route form). */
export const localRateLimitSchema = z.strictObject({
  stat_prefix: z.string().min(1),
  status: z.strictObject({ code: uint32 }).optional(),
  token_bucket: tokenBucketSchema.optional(),
  filter_enabled: runtimeFractionalPercentSchema.optional(),
  filter_enforced: runtimeFractionalPercentSchema.optional(),
  request_headers_to_add_when_not_enforced: z.array(headerValueOption).max(10).default([]),
  response_headers_to_add: z.array(headerValueOption).max(10).default([]),
  descriptors: z.array(z.unknown()).max(0, { message: `${NOT_SUPPORTED}: descriptors` }).optional(),
  stage: uint32.max(0, { message: `${NOT_SUPPORTED}: only stage 0` }).optional(),
  local_rate_limit_per_downstream_connection: z.literal(false, {
    message: `${NOT_SUPPORTED}: buckets are shared by all workers`,
  }).optional(),
  enable_x_ratelimit_headers: z.enum(["OFF", "DRAFT_VERSION_03"]).default("OFF"),
  always_consume_default_token_bucket: z.boolean().optional(),
  rate_limited_as_resource_exhausted: z.boolean().optional(),
  ...notSupportedFields([
    "vh_rate_limits",
    "local_cluster_rate_limit",
    "rate_limits",
    "max_dynamic_descriptors",
  ]),
});

/** The parsed LocalRateLimit config. */
export type LocalRateLimitConfig = z.infer<typeof localRateLimitSchema>;
