/** The envoy.tracers.zipkin extension object for the registry. */
import type { Extension } from "../../../registry/registry.ts";
import type { TracerCreate } from "../../../tracing/types.ts";
import { type ZipkinConfig, zipkinConfigSchema } from "./config.ts";
import { ZipkinDriver } from "./tracer.ts";

/** envoy.tracers.zipkin. */
export const zipkinTracer: Extension<ZipkinConfig, TracerCreate<ZipkinConfig>> = {
  name: "envoy.tracers.zipkin",
  typeUrls: ["type.googleapis.com/envoy.config.trace.v3.ZipkinConfig"],
  category: "tracer",
  schema: zipkinConfigSchema as never,
  clusterRefs: (c) => [{ path: ["collector_cluster"], name: c.collector_cluster }],
  create: (config, ctx) => new ZipkinDriver(config, ctx),
};
