/**
 * envoy.stat_sinks.statsd: counters (`|c`, the increase since the last flush) and gauges (`|g`) of used stats
 * with their full names every flush; each histogram value as a `|ms` timer from the event loop that recorded
 * it. No tags (Envoy's statsd sink has none). UDP (`address`: one line per datagram) or TCP through a cluster
 * (`tcp_cluster_name`: newline-terminated lines on one connection per event loop).
 */
import type { Extension } from "../../../registry/registry.ts";
import type { StatsSinkFactory } from "../../../stats/sink.ts";
import { udpSinkFactory, udpTarget } from "../common/statsd.ts";
import { type StatsdSinkConfig, statsdSinkSchema } from "./config.ts";
import { TcpStatsdHistogramWriter, TcpStatsdSink } from "./tcp.ts";

const udp = udpSinkFactory((c: StatsdSinkConfig) => ({
  target: udpTarget(c.address!),
  prefix: c.prefix,
  useTags: false,
  bufferSize: 0,
}));

const factory: StatsSinkFactory<StatsdSinkConfig> = {
  createSink(c, ctx) {
    if (c.tcp_cluster_name === undefined) return udp.createSink(c, ctx);
    return new TcpStatsdSink(c.tcp_cluster_name, c.prefix, ctx);
  },
  createHistogramWriter(c, ctx) {
    if (c.tcp_cluster_name === undefined) return udp.createHistogramWriter!(c, ctx);
    return new TcpStatsdHistogramWriter(c.tcp_cluster_name, c.prefix, ctx);
  },
};

/** The registry entry. */
export const statsdSink: Extension<StatsdSinkConfig, StatsSinkFactory<StatsdSinkConfig>> = {
  name: "envoy.stat_sinks.statsd",
  typeUrls: ["type.googleapis.com/envoy.config.metrics.v3.StatsdSink"],
  category: "stats_sink",
  schema: statsdSinkSchema,
  create: factory,
  clusterRefs: (
    c,
  ) => (c.tcp_cluster_name === undefined ? [] : [{ path: ["tcp_cluster_name"], name: c.tcp_cluster_name }]),
};
