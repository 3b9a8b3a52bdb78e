/** The envoy.filters.http.cors extension object for the registry. */
import type { HttpFilterCreate } from "../../../../http/filter.ts";
import type { Extension } from "../../../../registry/registry.ts";
import { type CorsConfig, corsPolicySchema, corsSchema } from "./config.ts";
import { loadedModule } from "../../../../registry/prepare.ts";

/** The implementation, loaded when a config uses the filter (see Extension.load). */
let impl: typeof import("./filter.ts") | undefined;
const CORS_NAME = "envoy.filters.http.cors";

/** envoy.filters.http.cors (per-route config: CorsPolicy; also the deprecated route.v3.CorsPolicy fields). */
export const httpCors: Extension<CorsConfig, HttpFilterCreate<CorsConfig>> = {
  name: CORS_NAME,
  typeUrls: ["type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors"],
  category: "http_filter",
  schema: corsSchema as never,
  perRouteSchema: corsPolicySchema,
  perRouteTypeUrls: ["type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy"],
  load: async () => {
    impl ??= await import("./filter.ts");
  },
  create: (_config, ctx, hcm) =>
    new (loadedModule(impl, CORS_NAME).CorsFactory)(ctx, hcm.filterName ?? CORS_NAME, hcm.statPrefix),
};
