/**
 * A cluster's `upstream_connection_options` (envoy.config.cluster.v3.UpstreamConnectionOptions):
 * `tcp_keepalive` switches SO_KEEPALIVE on (`TcpConn.setKeepAlive`); its timings, where given, are set as
 * TCP_KEEPIDLE / TCP_KEEPINTVL / TCP_KEEPCNT on the socket through libc (transport/sockopt.ts), fields left out
 * keep the kernel's net.ipv4.tcp_keepalive_* values, as Envoy; a field set to 0 turns keepalive off as Envoy
 * documents.
 */
import { z } from "zod/mini";
import { uint32 } from "../config/common.ts";
import { notSupported, onlyValues } from "../config/schema_util.ts";
import { NOT_SUPPORTED } from "../config/errors.ts";
import type { ConnectFn } from "./pool.ts";
import { type KeepaliveTimings, setKeepaliveTimings, sockoptUnavailable } from "../transport/sockopt.ts";

/** A timing field: any value, but a non-zero one needs socket options (named when they cannot be set here). */
const keepaliveField = z.optional(uint32.check(z.superRefine((v, ctx) => {
  const why = v === 0 ? "" : sockoptUnavailable();
  if (why !== "") ctx.addIssue({ code: "custom", message: `${NOT_SUPPORTED} here: ${why}` });
})));

/** envoy.config.core.v3.TcpKeepalive. */
const tcpKeepaliveSchema = z.strictObject({
  keepalive_probes: keepaliveField,
  keepalive_time: keepaliveField,
  keepalive_interval: keepaliveField,
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

/** The timings the options set on each socket, undefined when they leave all three to the kernel. */
function timingsOf(o: UpstreamConnectionOptions | undefined): KeepaliveTimings | undefined {
  const k = o?.tcp_keepalive;
  if (k === undefined) return undefined;
  const t = { time: k.keepalive_time, interval: k.keepalive_interval, probes: k.keepalive_probes };
  return t.time === undefined && t.interval === undefined && t.probes === undefined ? undefined : t;
}

/** Deno.connect with SO_KEEPALIVE on and the configured timings (built once per cluster; pools and health checks). */
export function keepAliveConnect(o: UpstreamConnectionOptions | undefined): ConnectFn {
  const timings = timingsOf(o);
  return async (addr) => {
    const conn = await Deno.connect(addr);
    try {
      conn.setKeepAlive(true);
      if (timings !== undefined && !setKeepaliveTimings(conn, timings)) {
        throw new Error(
          `cannot set the TCP keepalive timings on the socket to ${addr.hostname}:${addr.port}`,
        );
      }
    } catch (e) {
      conn.close();
      throw e;
    }
    return conn;
  };
}
