/** The envoy.filters.http.header_to_metadata extension object for the registry. */
import type { HttpFilterCreate } from "../../../../http/filter.ts";
import type { Extension } from "../../../../registry/registry.ts";
import {
  type HeaderToMetadataConfig,
  headerToMetadataPerRouteSchema,
  headerToMetadataSchema,
} from "./config.ts";
import { loadedModule } from "../../../../registry/prepare.ts";

/** The implementation, loaded when a config uses the filter (see Extension.load). */
let impl: typeof import("./filter.ts") | undefined;
const HEADER_TO_METADATA_NAME = "envoy.filters.http.header_to_metadata";

/** envoy.filters.http.header_to_metadata (per-route config: the same Config message, with rules). */
export const httpHeaderToMetadata: Extension<
  HeaderToMetadataConfig,
  HttpFilterCreate<HeaderToMetadataConfig>
> = {
  name: HEADER_TO_METADATA_NAME,
  typeUrls: ["type.googleapis.com/envoy.extensions.filters.http.header_to_metadata.v3.Config"],
  category: "http_filter",
  schema: headerToMetadataSchema as never,
  perRouteSchema: headerToMetadataPerRouteSchema,
  load: async () => {
    impl ??= await import("./filter.ts");
  },
  create: (config, ctx, hcm) =>
    new (loadedModule(impl, HEADER_TO_METADATA_NAME).HeaderToMetadataFactory)(
      config,
      ctx,
      hcm.filterName ?? HEADER_TO_METADATA_NAME,
    ),
};
