/** zod schema of envoy.config.cluster.v3.OutlierDetection with Envoy's defaults applied. */
import { z } from "zod/mini";
import { duration, uint32 } from "../../config/common.ts";
import { onlyValues } from "../../config/schema_util.ts";

const NOT_SUPPORTED = "Field not supported by nuncio";
const unsupported = z.optional(z.never({ error: NOT_SUPPORTED }));
const pct = uint32.check(z.maximum(100));

/** OutlierDetection (durations in ms). */
export const outlierDetectionSchema = z.strictObject({
  consecutive_5xx: z._default(uint32, 5),
  interval: z._default(
    duration.check(z.refine((ms) => ms > 0, { error: "interval must be positive" })),
    10_000,
  ),
  base_ejection_time: z._default(
    duration.check(z.refine((ms) => ms > 0, { error: "base_ejection_time must be positive" })),
    30_000,
  ),
  max_ejection_percent: z._default(pct, 10),
  enforcing_consecutive_5xx: z._default(pct, 100),
  enforcing_success_rate: z._default(pct, 100),
  success_rate_minimum_hosts: z._default(uint32, 5),
  success_rate_request_volume: z._default(uint32, 100),
  success_rate_stdev_factor: z._default(uint32, 1900),
  consecutive_gateway_failure: z._default(uint32, 5),
  enforcing_consecutive_gateway_failure: z._default(pct, 0),
  split_external_local_origin_errors: onlyValues(
    [false],
    "local-origin errors (connect failures, timeouts) count with the upstream's 5xx",
  ),
  failure_percentage_threshold: z._default(pct, 85),
  enforcing_failure_percentage: z._default(pct, 0),
  failure_percentage_minimum_hosts: z._default(uint32, 5),
  failure_percentage_request_volume: z._default(uint32, 50),
  max_ejection_time: z._default(duration, 300_000),
  consecutive_local_origin_failure: unsupported,
  enforcing_consecutive_local_origin_failure: unsupported,
  enforcing_local_origin_success_rate: unsupported,
  enforcing_failure_percentage_local_origin: unsupported,
  max_ejection_time_jitter: z.optional(duration.check(z.refine((ms) => ms === 0, {
    error: `${NOT_SUPPORTED}: only 0s (ejection times have no jitter)`,
  }))),
  successful_active_health_check_uneject_host: onlyValues(
    [false],
    "a passing active health check does not un-eject a host",
  ),
  monitors: unsupported,
  always_eject_one_host: onlyValues([false], "max_ejection_percent always holds"),
});

/** Parsed OutlierDetection. */
export type OutlierConfig = z.output<typeof outlierDetectionSchema>;
