/** The envoy.tracers.opentelemetry extension object for the registry. */
import type { ClusterRef, Extension } from "../../../registry/registry.ts";
import type { TracerCreate } from "../../../tracing/types.ts";
import { type OpenTelemetryConfig, openTelemetryConfigSchema } from "./config.ts";
import { OtelDriver } from "./tracer.ts";

/** envoy.tracers.opentelemetry. */
export const openTelemetryTracer: Extension<OpenTelemetryConfig, TracerCreate<OpenTelemetryConfig>> = {
  name: "envoy.tracers.opentelemetry",
  typeUrls: ["type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig"],
  category: "tracer",
  schema: openTelemetryConfigSchema as never,
  clusterRefs: (c) => {
    const out: ClusterRef[] = [];
    const g = c.grpc_service?.envoy_grpc;
    if (g !== undefined) {
      out.push({ path: ["grpc_service", "envoy_grpc", "cluster_name"], name: g.cluster_name });
    }
    const h = c.http_service;
    if (h !== undefined) {
      out.push({ path: ["http_service", "http_uri", "cluster"], name: h.http_uri.cluster });
    }
    return out;
  },
  create: (config, ctx) => new OtelDriver(config, ctx),
};
