/** zod schema of envoy.config.cluster.v3.OutlierDetection with Envoy's defaults applied. */
import { z } from "zod";
import { duration, uint32 } from "../../config/common.ts";

const NOT_SUPPORTED = "Field not supported by nuncio";
const unsupported = z.never({ error: NOT_SUPPORTED }).optional();
const pct = uint32.max(100);

/** OutlierDetection (durations in ms). */
export const outlierDetectionSchema = z.strictObject({
  consecutive_5xx: uint32.default(5),
  interval: duration.refine((ms) => ms > 0, { error: "interval must be positive" }).default(10_000),
  base_ejection_time: duration.refine((ms) => ms > 0, { error: "base_ejection_time must be positive" })
    .default(30_000),
  max_ejection_percent: pct.default(10),
  enforcing_consecutive_5xx: pct.default(100),
  enforcing_success_rate: pct.default(100),
  success_rate_minimum_hosts: uint32.default(5),
  success_rate_request_volume: uint32.default(100),
  success_rate_stdev_factor: uint32.default(1900),
  consecutive_gateway_failure: uint32.default(5),
  enforcing_consecutive_gateway_failure: pct.default(0),
  split_external_local_origin_errors: z.literal(false, { error: NOT_SUPPORTED }).optional(),
  failure_percentage_threshold: pct.default(85),
  enforcing_failure_percentage: pct.default(0),
  failure_percentage_minimum_hosts: uint32.default(5),
  failure_percentage_request_volume: uint32.default(50),
  max_ejection_time: duration.default(300_000),
  consecutive_local_origin_failure: unsupported,
  enforcing_consecutive_local_origin_failure: unsupported,
  enforcing_local_origin_success_rate: unsupported,
  enforcing_failure_percentage_local_origin: unsupported,
  max_ejection_time_jitter: unsupported,
  successful_active_health_check_uneject_host: unsupported,
  monitors: unsupported,
  always_eject_one_host: unsupported,
});

/** Parsed OutlierDetection. */
export type OutlierConfig = z.output<typeof outlierDetectionSchema>;
