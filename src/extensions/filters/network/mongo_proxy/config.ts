/** Config of envoy.filters.network.mongo_proxy (envoy.extensions.filters.network.mongo_proxy.v3.MongoProxy). */
import { z } from "zod/mini";
import { duration, fractionalPercent } from "../../../../config/common.ts";
import { notSupportedFields } from "../../../../config/schema_util.ts";

/** envoy.extensions.filters.common.fault.v3.FaultDelay as the mongo proxy uses it (a fixed delay only). */
export const mongoFaultDelaySchema = z.strictObject({
  fixed_delay: duration,
  percentage: z.optional(fractionalPercent),
  // an HTTP header cannot ask a Mongo connection for a delay (Envoy accepts it and never delays)
  ...notSupportedFields(["header_delay"]),
});

/** The MongoProxy message. */
export const mongoProxySchema = z.strictObject({
  stat_prefix: z.string().check(z.minLength(1)),
  /** A file path; "" or absent: no access log. */
  access_log: z.optional(z.string()),
  delay: z.optional(mongoFaultDelaySchema),
  emit_dynamic_metadata: z.optional(z.boolean()),
  /** The commands with their own `cmd.<name>.` stats (default delete, insert, update). */
  commands: z.optional(z.array(z.string().check(z.minLength(1)))),
});

/** The parsed MongoProxy config. */
export type MongoProxyConfig = z.infer<typeof mongoProxySchema>;
