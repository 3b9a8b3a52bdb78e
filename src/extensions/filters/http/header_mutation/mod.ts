/** The envoy.filters.http.header_mutation extension object for the registry. */
import type { HttpFilterCreate } from "../../../../http/filter.ts";
import type { Extension } from "../../../../registry/registry.ts";
import { type HeaderMutationConfig, headerMutationPerRouteSchema, headerMutationSchema } from "./config.ts";
import { loadedModule } from "../../../../registry/prepare.ts";

/** The implementation, loaded when a config uses the filter (see Extension.load). */
let impl: typeof import("./filter.ts") | undefined;
const HEADER_MUTATION_NAME = "envoy.filters.http.header_mutation";

/** envoy.filters.http.header_mutation (per-route config: HeaderMutationPerRoute). */
export const httpHeaderMutation: Extension<HeaderMutationConfig, HttpFilterCreate<HeaderMutationConfig>> = {
  name: HEADER_MUTATION_NAME,
  typeUrls: ["type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutation"],
  category: "http_filter",
  schema: headerMutationSchema as never,
  perRouteSchema: headerMutationPerRouteSchema,
  perRouteTypeUrls: [
    "type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutationPerRoute",
  ],
  load: async () => {
    impl ??= await import("./filter.ts");
  },
  create: (config, ctx, hcm) =>
    new (loadedModule(impl, HEADER_MUTATION_NAME).HeaderMutationFactory)(
      config,
      ctx,
      hcm.filterName ?? HEADER_MUTATION_NAME,
    ),
};
