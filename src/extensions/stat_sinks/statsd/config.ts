/** envoy.config.metrics.v3.StatsdSink: a UDP statsd server (`address`) or a TCP one behind a cluster, and the prefix. */
import { z } from "zod/mini";
import { statsdAddressSchema } from "../common/statsd.ts";

/** The StatsdSink schema: exactly one of `address` and `tcp_cluster_name`. */
export const statsdSinkSchema = z.strictObject({
  address: z.optional(statsdAddressSchema),
  /** A cluster whose hosts run a TCP statsd listener (a static cluster, checked at load as Envoy). */
  tcp_cluster_name: z.optional(z.string().check(z.minLength(1))),
  /** Empty: "envoy". */
  prefix: z._default(z.string(), ""),
}).check(z.refine((c) => (c.address === undefined) !== (c.tcp_cluster_name === undefined), {
  message: "Exactly one of address, tcp_cluster_name must be set",
}));

/** The parsed StatsdSink. */
export type StatsdSinkConfig = z.output<typeof statsdSinkSchema>;
