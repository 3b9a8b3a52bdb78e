/** Config of envoy.filters.http.local_ratelimit (envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit). */
import { z } from "zod/mini";
import { headerValueOption, uint32 } from "../../../../config/common.ts";
import { NOT_SUPPORTED } from "../../../../config/errors.ts";
import { envoyEnum, notSupportedFields } from "../../../../config/schema_util.ts";
import { runtimeFractionalPercentSchema, tokenBucketSchema } from "../../common/config.ts";

/** The LocalRateLimit message (also its per-route form). */
export const localRateLimitSchema = z.strictObject({
  stat_prefix: z.string().check(z.minLength(1)),
  status: z.optional(z.strictObject({ code: uint32 })),
  token_bucket: z.optional(tokenBucketSchema),
  filter_enabled: z.optional(runtimeFractionalPercentSchema),
  filter_enforced: z.optional(runtimeFractionalPercentSchema),
  request_headers_to_add_when_not_enforced: z._default(z.array(headerValueOption).check(z.maxLength(10)), []),
  response_headers_to_add: z._default(z.array(headerValueOption).check(z.maxLength(10)), []),
  descriptors: z.optional(
    z.array(z.unknown()).check(z.maxLength(0, { message: `${NOT_SUPPORTED}: descriptors` })),
  ),
  stage: z.optional(uint32.check(z.maximum(0, { message: `${NOT_SUPPORTED}: only stage 0` }))),
  local_rate_limit_per_downstream_connection: z.optional(z.literal(false, {
    message: `${NOT_SUPPORTED}: buckets are shared by all workers`,
  })),
  enable_x_ratelimit_headers: z._default(envoyEnum(["OFF", "DRAFT_VERSION_03"]), "OFF"),
  // decides whether a request matching a descriptor also takes from token_bucket: with no descriptors (the
  // only form nuncio takes) none matches and the default bucket is always consumed, whatever the value
  always_consume_default_token_bucket: z.optional(z.boolean()),
  rate_limited_as_resource_exhausted: z.optional(z.boolean()),
  ...notSupportedFields([
    "vh_rate_limits",
    "local_cluster_rate_limit",
    "rate_limits",
    "max_dynamic_descriptors",
  ]),
});

/** The parsed LocalRateLimit config. */
export type LocalRateLimitConfig = z.infer<typeof localRateLimitSchema>;
