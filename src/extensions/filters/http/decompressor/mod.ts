/** The envoy.filters.http.decompressor extension object for the registry. */
import type { HttpFilterCreate } from "../../../../http/filter.ts";
import type { Extension } from "../../../../registry/registry.ts";
import { type DecompressorConfig, decompressorSchema } from "./config.ts";
import { loadedModule } from "../../../../registry/prepare.ts";

/** The implementation, loaded when a config uses the filter (see Extension.load). */
let impl: typeof import("./filter.ts") | undefined;
const DECOMPRESSOR_NAME = "envoy.filters.http.decompressor";

/** envoy.filters.http.decompressor (no per-route config, as in Envoy). */
export const httpDecompressor: Extension<DecompressorConfig, HttpFilterCreate<DecompressorConfig>> = {
  name: DECOMPRESSOR_NAME,
  typeUrls: ["type.googleapis.com/envoy.extensions.filters.http.decompressor.v3.Decompressor"],
  category: "http_filter",
  schema: decompressorSchema as never,
  load: async () => {
    impl ??= await import("./filter.ts");
  },
  create: (config, ctx, hcm) =>
    new (loadedModule(impl, DECOMPRESSOR_NAME).DecompressorFilterFactory)(config, ctx, hcm.statPrefix),
};
