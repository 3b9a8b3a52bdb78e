/** The envoy.filters.http.buffer extension object for the registry. */
import type { HttpFilterCreate } from "../../../../http/filter.ts";
import type { Extension } from "../../../../registry/registry.ts";
import { type BufferConfig, bufferPerRouteSchema, bufferSchema } from "./config.ts";
import { BUFFER_NAME, BufferFactory } from "./filter.ts";

/** envoy.filters.http.buffer (per-route config: BufferPerRoute). */
export const httpBuffer: Extension<BufferConfig, HttpFilterCreate<BufferConfig>> = {
  name: BUFFER_NAME,
  typeUrls: ["type.googleapis.com/envoy.extensions.filters.http.buffer.v3.Buffer"],
  category: "http_filter",
  schema: bufferSchema as never,
  perRouteSchema: bufferPerRouteSchema,
  perRouteTypeUrls: ["type.googleapis.com/envoy.extensions.filters.http.buffer.v3.BufferPerRoute"],
  create: (config, _ctx, hcm) => new BufferFactory(config, hcm.filterName ?? BUFFER_NAME),
};
