/**
 * envoy.stat_sinks.dog_statsd: the statsd lines with tag-extracted names and DogStatsD tags
 * (`envoy.cluster.upstream_rq:3|c|#envoy.response_code:200,envoy.cluster_name:web`), datagrams filled up to
 * `max_bytes_per_datagram` at flush; histogram values one per datagram as `|ms` timers.
 */
import type { Extension } from "../../../registry/registry.ts";
import type { StatsSinkFactory } from "../../../stats/sink.ts";
import { udpSinkFactory, udpTarget } from "../common/statsd.ts";
import { type DogStatsdSinkConfig, dogStatsdSinkSchema } from "./config.ts";

/** The registry entry. */
export const dogStatsdSink: Extension<DogStatsdSinkConfig, StatsSinkFactory<DogStatsdSinkConfig>> = {
  name: "envoy.stat_sinks.dog_statsd",
  typeUrls: ["type.googleapis.com/envoy.config.metrics.v3.DogStatsdSink"],
  category: "stats_sink",
  schema: dogStatsdSinkSchema,
  create: udpSinkFactory((c) => ({
    target: udpTarget(c.address),
    prefix: c.prefix,
    useTags: true,
    bufferSize: c.max_bytes_per_datagram ?? 0,
  })),
};
