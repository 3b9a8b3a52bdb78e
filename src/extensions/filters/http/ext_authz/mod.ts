/** The envoy.filters.http.ext_authz extension object for the registry. */
import type { HttpFilterCreate } from "../../../../http/filter.ts";
import type { Extension } from "../../../../registry/registry.ts";
import { type ExtAuthzConfig, extAuthzPerRouteSchema, extAuthzSchema } from "./config.ts";
import { loadedModule } from "../../../../registry/prepare.ts";

/** The implementation, loaded when a config uses the filter (see Extension.load). */
let impl: typeof import("./factory.ts") | undefined;
const EXT_AUTHZ_NAME = "envoy.filters.http.ext_authz";

/**
 * envoy.filters.http.ext_authz (per-route config: ExtAuthzPerRoute). Its service cluster is not a cluster
 * reference checked at load: as in Envoy, a missing cluster makes each check an error.
 */
export const httpExtAuthz: Extension<ExtAuthzConfig, HttpFilterCreate<ExtAuthzConfig>> = {
  name: EXT_AUTHZ_NAME,
  typeUrls: ["type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz"],
  category: "http_filter",
  schema: extAuthzSchema as never,
  perRouteSchema: extAuthzPerRouteSchema,
  perRouteTypeUrls: ["type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute"],
  load: async () => {
    impl ??= await import("./factory.ts");
  },
  create: (config, ctx, hcm) =>
    new (loadedModule(impl, EXT_AUTHZ_NAME).ExtAuthzFactory)(
      config,
      ctx,
      hcm.filterName ?? EXT_AUTHZ_NAME,
      hcm.statPrefix,
    ),
};
