/** The envoy.filters.http.compressor extension object for the registry. */
import type { HttpFilterCreate } from "../../../../http/filter.ts";
import type { Extension } from "../../../../registry/registry.ts";
import { type CompressorConfig, compressorPerRouteSchema, compressorSchema } from "./config.ts";
import { loadedModule } from "../../../../registry/prepare.ts";

/** The implementation, loaded when a config uses the filter (see Extension.load). */
let impl: typeof import("./filter.ts") | undefined;
const COMPRESSOR_NAME = "envoy.filters.http.compressor";

/** envoy.filters.http.compressor (per-route config: CompressorPerRoute). */
export const httpCompressor: Extension<CompressorConfig, HttpFilterCreate<CompressorConfig>> = {
  name: COMPRESSOR_NAME,
  typeUrls: ["type.googleapis.com/envoy.extensions.filters.http.compressor.v3.Compressor"],
  category: "http_filter",
  schema: compressorSchema as never,
  perRouteSchema: compressorPerRouteSchema,
  perRouteTypeUrls: ["type.googleapis.com/envoy.extensions.filters.http.compressor.v3.CompressorPerRoute"],
  load: async () => {
    impl ??= await import("./filter.ts");
  },
  create: (config, ctx, hcm) =>
    new (loadedModule(impl, COMPRESSOR_NAME).CompressorFilterFactory)(
      config,
      ctx,
      hcm.filterName ?? COMPRESSOR_NAME,
      hcm.statPrefix,
    ),
};
