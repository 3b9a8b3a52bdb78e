/** The envoy.filters.http.health_check extension object for the registry. */
import type { HttpFilterCreate } from "../../../../http/filter.ts";
import type { Extension } from "../../../../registry/registry.ts";
import { type HealthCheckFilterConfig, healthCheckFilterSchema } from "./config.ts";
import { HealthCheckFilterFactory } from "./filter.ts";

/** envoy.filters.http.health_check. */
export const httpHealthCheck: Extension<HealthCheckFilterConfig, HttpFilterCreate<HealthCheckFilterConfig>> =
  {
    name: "envoy.filters.http.health_check",
    typeUrls: ["type.googleapis.com/envoy.extensions.filters.http.health_check.v3.HealthCheck"],
    category: "http_filter",
    schema: healthCheckFilterSchema as never,
    create: (config, ctx) => new HealthCheckFilterFactory(config, ctx),
  };
