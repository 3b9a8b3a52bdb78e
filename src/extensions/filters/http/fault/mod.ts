/** The envoy.filters.http.fault extension object for the registry. */
import type { HttpFilterCreate } from "../../../../http/filter.ts";
import type { Extension } from "../../../../registry/registry.ts";
import { type HttpFaultConfig, httpFaultSchema } from "./config.ts";
import { FAULT_NAME, FaultFactory } from "./filter.ts";

/** envoy.filters.http.fault (per-route config: the same HTTPFault message). */
export const httpFault: Extension<HttpFaultConfig, HttpFilterCreate<HttpFaultConfig>> = {
  name: FAULT_NAME,
  typeUrls: ["type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"],
  category: "http_filter",
  schema: httpFaultSchema as never,
  perRouteSchema: httpFaultSchema,
  create: (config, ctx, hcm) => new FaultFactory(config, ctx, hcm.filterName ?? FAULT_NAME, hcm.statPrefix),
};
