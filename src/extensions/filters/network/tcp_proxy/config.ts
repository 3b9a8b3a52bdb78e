/** Config of envoy.filters.network.tcp_proxy (envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy). */
import { z } from "zod";
import { duration, uint32 } from "../../../../config/common.ts";
import { notSupported } from "../../../../config/schema_util.ts";
import { accessLogEntrySchema } from "../../../../access_log/config.ts";

/** The TcpProxy message. */
export const tcpProxySchema = z.strictObject({
  stat_prefix: z.string().min(1),
  cluster: z.string().min(1).optional(),
  weighted_clusters: z.strictObject({
    clusters: z.array(z.strictObject({
      name: z.string().min(1),
      weight: uint32.min(1),
      metadata_match: notSupported,
    })).min(1),
  }).optional(),
  idle_timeout: duration.optional(),
  max_connect_attempts: uint32.min(1).optional(),
  access_log: z.array(accessLogEntrySchema).optional(),
  max_downstream_connection_duration: duration.optional(),
  hash_policy: notSupported,
  metadata_match: notSupported,
  on_demand: notSupported,
  tunneling_config: notSupported,
  downstream_idle_timeout: notSupported,
  upstream_idle_timeout: notSupported,
  access_log_options: notSupported,
}).refine((c) => (c.cluster === undefined) !== (c.weighted_clusters === undefined), {
  message: "Exactly one of cluster and weighted_clusters must be set",
});

/** The parsed TcpProxy config. */
export type TcpProxyConfig = z.infer<typeof tcpProxySchema>;
