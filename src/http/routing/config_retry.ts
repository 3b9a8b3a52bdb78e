/** zod schemas for RetryPolicy and RequestMirrorPolicy (route and virtual host level). */
import { z } from "zod/mini";
import { duration, fractionalPercent, uint32, uint64 } from "../../config/common.ts";
import { integer, notSupportedFields, transformWithIssues } from "../../config/schema_util.ts";
import { headerMatcherSchema } from "./config_match.ts";
import { exactlyOne } from "./config_util.ts";
import { parseRetryOn } from "./retry_policy.ts";

const PREVIOUS_HOSTS = "envoy.retry_host_predicates.previous_hosts";
const PREVIOUS_HOSTS_TYPE =
  "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate";

/** retry_on as a comma-separated list; parses to condition bits. */
const retryOn = z.pipe(
  z._default(z.string(), ""),
  transformWithIssues((v, ctx) => {
    const r = parseRetryOn(v);
    for (const u of r.unknown) ctx.addIssue({ code: "custom", message: `Unknown retry_on condition "${u}"` });
    return r.bits;
  }),
);

/** envoy.config.route.v3.RetryPolicy. */
export const retryPolicySchema = z.strictObject({
  retry_on: retryOn,
  num_retries: z._default(uint32, 1),
  per_try_timeout: z.optional(duration),
  retry_host_predicate: z._default(
    z.array(
      z.strictObject({
        name: z.string().check(z.minLength(1)),
        typed_config: z.optional(z.looseObject({ "@type": z.string() })),
      }).check(z.superRefine((p, ctx) => {
        const t = p.typed_config?.["@type"];
        if (t !== undefined ? t !== PREVIOUS_HOSTS_TYPE : p.name !== PREVIOUS_HOSTS) {
          ctx.addIssue({
            code: "custom",
            message:
              `Field not supported by nuncio: only ${PREVIOUS_HOSTS} is a supported retry host predicate`,
          });
        }
      })),
    ),
    [],
  ),
  host_selection_retry_max_attempts: z._default(uint64, 1),
  retriable_status_codes: z._default(z.array(integer.check(z.minimum(100), z.maximum(599))), []),
  retry_back_off: z.optional(
    z.strictObject({
      base_interval: duration.check(
        z.refine((ms) => ms > 0, { error: "base_interval must be greater than zero" }),
      ),
      max_interval: z.optional(duration),
    }).check(z.superRefine((b, ctx) => {
      if (b.max_interval !== undefined && b.max_interval < b.base_interval) {
        ctx.addIssue({
          code: "custom",
          path: ["max_interval"],
          message: "max_interval must be greater than or equal to base_interval",
        });
      }
    })),
  ),
  retriable_headers: z._default(z.array(headerMatcherSchema), []),
  retriable_request_headers: z._default(z.array(headerMatcherSchema), []),
  ...notSupportedFields([
    "per_try_idle_timeout",
    "retry_priority",
    "retry_options_predicates",
    "rate_limited_retry_back_off",
  ]),
});

/** The parsed form of a RetryPolicy (durations in ms, retry_on as bits). */
export type RetryPolicyConfig = z.infer<typeof retryPolicySchema>;

/** envoy.config.route.v3.RouteAction.RequestMirrorPolicy. */
export const requestMirrorPolicySchema = z.strictObject({
  cluster: z.optional(z.string().check(z.minLength(1))),
  /** The request header naming the mirror cluster (absent header or unknown cluster: no shadow). */
  cluster_header: z.optional(z.string().check(z.minLength(1))),
  runtime_fraction: z.optional(z.strictObject({
    default_value: fractionalPercent,
    runtime_key: z.optional(z.string()),
  })),
  ...notSupportedFields(["trace_sampled", "disable_shadow_host_suffix_append"]),
}).check(z.superRefine((v, ctx) => exactlyOne(v, ["cluster", "cluster_header"], ctx)));

/** The parsed form of a RequestMirrorPolicy. */
export type RequestMirrorPolicyConfig = z.infer<typeof requestMirrorPolicySchema>;

/** per_request_buffer_limit_bytes (route and virtual host). */
export const perRequestBufferLimit = z.optional(uint32);
