/** The envoy.filters.http.decompressor extension object for the registry. */
import type { HttpFilterCreate } from "../../../../http/filter.ts";
import type { Extension } from "../../../../registry/registry.ts";
import { type DecompressorConfig, decompressorSchema } from "./config.ts";
import { DECOMPRESSOR_NAME, DecompressorFilterFactory } from "./filter.ts";

/** envoy.filters.http.decompressor (no per-route config, as in Envoy). */
export const httpDecompressor: Extension<DecompressorConfig, HttpFilterCreate<DecompressorConfig>> = {
  name: DECOMPRESSOR_NAME,
  typeUrls: ["type.googleapis.com/envoy.extensions.filters.http.decompressor.v3.Decompressor"],
  category: "http_filter",
  schema: decompressorSchema as never,
  create: (config, ctx, hcm) => new DecompressorFilterFactory(config, ctx, hcm.statPrefix),
};
