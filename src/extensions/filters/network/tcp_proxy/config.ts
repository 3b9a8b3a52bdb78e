/** Config of envoy.filters.network.tcp_proxy (envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy). */
import { z } from "zod/mini";
import { duration, uint32 } from "../../../../config/common.ts";
import { notSupported } from "../../../../config/schema_util.ts";
import { accessLogEntrySchema } from "../../../../access_log/config.ts";

/** The TcpProxy message. */
export const tcpProxySchema = z.strictObject({
  stat_prefix: z.string().check(z.minLength(1)),
  cluster: z.optional(z.string().check(z.minLength(1))),
  weighted_clusters: z.optional(z.strictObject({
    clusters: z.array(z.strictObject({
      name: z.string().check(z.minLength(1)),
      weight: uint32.check(z.minimum(1)),
      metadata_match: notSupported,
    })).check(z.minLength(1)),
  })),
  idle_timeout: z.optional(duration),
  max_connect_attempts: z.optional(uint32.check(z.minimum(1))),
  access_log: z.optional(z.array(accessLogEntrySchema)),
  max_downstream_connection_duration: z.optional(duration),
  hash_policy: notSupported,
  metadata_match: notSupported,
  on_demand: notSupported,
  tunneling_config: notSupported,
  downstream_idle_timeout: notSupported,
  upstream_idle_timeout: notSupported,
  access_log_options: notSupported,
}).check(z.refine((c) => (c.cluster === undefined) !== (c.weighted_clusters === undefined), {
  message: "Exactly one of cluster and weighted_clusters must be set",
}));

/** The parsed TcpProxy config. */
export type TcpProxyConfig = z.infer<typeof tcpProxySchema>;
