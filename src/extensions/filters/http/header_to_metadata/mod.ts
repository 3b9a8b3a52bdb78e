/** The envoy.filters.http.header_to_metadata extension object for the registry. */
import type { HttpFilterCreate } from "../../../../http/filter.ts";
import type { Extension } from "../../../../registry/registry.ts";
import {
  type HeaderToMetadataConfig,
  headerToMetadataPerRouteSchema,
  headerToMetadataSchema,
} from "./config.ts";
import { HEADER_TO_METADATA_NAME, HeaderToMetadataFactory } from "./filter.ts";

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
  create: (config, ctx, hcm) =>
    new HeaderToMetadataFactory(config, ctx, hcm.filterName ?? HEADER_TO_METADATA_NAME),
};
