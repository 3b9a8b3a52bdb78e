/** The router extension object for the registry. */
import type { Extension } from "../../../../registry/registry.ts";
import type { HttpFilterCreate } from "../../../../http/filter.ts";
import { type RouterConfig, routerSchema } from "./config.ts";
import { RouterFactory } from "./filter.ts";

/** envoy.filters.http.router. */
export const router: Extension<RouterConfig, HttpFilterCreate<RouterConfig>> = {
  name: "envoy.filters.http.router",
  terminal: true,
  typeUrls: ["type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"],
  category: "http_filter",
  schema: routerSchema as never,
  create: (config, ctx, hcm) => new RouterFactory(config, ctx, hcm.statPrefix),
};
