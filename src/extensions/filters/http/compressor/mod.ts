/** The envoy.filters.http.compressor extension object for the registry. */
import type { HttpFilterCreate } from "../../../../http/filter.ts";
import type { Extension } from "../../../../registry/registry.ts";
import { type CompressorConfig, compressorPerRouteSchema, compressorSchema } from "./config.ts";
import { COMPRESSOR_NAME, CompressorFilterFactory } from "./filter.ts";

/** envoy.filters.http.compressor (per-route config: CompressorPerRoute). */
export const httpCompressor: Extension<CompressorConfig, HttpFilterCreate<CompressorConfig>> = {
  name: COMPRESSOR_NAME,
  typeUrls: ["type.googleapis.com/envoy.extensions.filters.http.compressor.v3.Compressor"],
  category: "http_filter",
  schema: compressorSchema as never,
  perRouteSchema: compressorPerRouteSchema,
  perRouteTypeUrls: ["type.googleapis.com/envoy.extensions.filters.http.compressor.v3.CompressorPerRoute"],
  create: (config, ctx, hcm) =>
    new CompressorFilterFactory(config, ctx, hcm.filterName ?? COMPRESSOR_NAME, hcm.statPrefix),
};
