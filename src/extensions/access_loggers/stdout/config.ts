/** Config of envoy.access_loggers.stdout / stderr (StdoutAccessLog, StderrAccessLog). */
import { z } from "zod/mini";
import { substitutionFormatString } from "../../../access_log/format_config.ts";

/** StdoutAccessLog and StderrAccessLog: an optional `log_format`. */
export const streamAccessLogSchema = z.strictObject({
  log_format: z.optional(substitutionFormatString),
});

/** The parsed config. */
export type StreamAccessLogConfig = z.infer<typeof streamAccessLogSchema>;
