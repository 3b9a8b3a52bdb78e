/**
 * A cluster's `upstream_connection_options` (envoy.config.cluster.v3.UpstreamConnectionOptions). Deno's
 * `TcpConn.setKeepAlive` can only switch SO_KEEPALIVE on: `tcp_keepalive: {}` (the kernel's
 * tcp_keepalive_time/intvl/probes apply, as Envoy does for fields left out) is honoured, and a field set to 0
 * turns keepalive off as Envoy documents; any other value would need TCP_KEEPIDLE/KEEPINTVL/KEEPCNT, which the
 * runtime cannot set, and is rejected naming the kernel setting that applies instead.
 */
import { z } from "zod/mini";
import { uint32 } from "../config/common.ts";
import { notSupported, onlyValues } from "../config/schema_util.ts";
import { NOT_SUPPORTED } from "../config/errors.ts";
import type { ConnectFn } from "./pool.ts";

function keepaliveField(field: string, sysctl: string) {
  return z.optional(uint32.check(z.refine((v) => v === 0, {
    error: `${NOT_SUPPORTED}: Deno can only switch SO_KEEPALIVE on, so the kernel's net.ipv4.${sysctl} ` +
      `applies to ${field} (leave it out; 0 turns keepalive off)`,
  })));
}

/** envoy.config.core.v3.TcpKeepalive. */
const tcpKeepaliveSchema = z.strictObject({
  keepalive_probes: keepaliveField("keepalive_probes", "tcp_keepalive_probes"),
  keepalive_time: keepaliveField("keepalive_time", "tcp_keepalive_time"),
  keepalive_interval: keepaliveField("keepalive_interval", "tcp_keepalive_intvl"),
});

/** envoy.config.cluster.v3.UpstreamConnectionOptions. */
export const upstreamConnectionOptionsSchema = z.strictObject({
  tcp_keepalive: z.optional(tcpKeepaliveSchema),
  set_local_interface_name_on_upstream_connections: onlyValues(
    [false],
    "the local interface name of upstream connections is not recorded",
  ),
  happy_eyeballs_config: notSupported,
});

/** The parsed UpstreamConnectionOptions. */
export type UpstreamConnectionOptions = z.infer<typeof upstreamConnectionOptionsSchema>;

/** True when the options switch SO_KEEPALIVE on (tcp_keepalive present, no field 0). */
export function wantsKeepAlive(o: UpstreamConnectionOptions | undefined): boolean {
  const k = o?.tcp_keepalive;
  return k !== undefined && k.keepalive_probes !== 0 && k.keepalive_time !== 0 && k.keepalive_interval !== 0;
}

/** Deno.connect with SO_KEEPALIVE on (built once per cluster; the pools and health checks use it). */
export const keepAliveConnect: ConnectFn = async (o) => {
  const conn = await Deno.connect(o);
  conn.setKeepAlive(true);
  return conn;
};
