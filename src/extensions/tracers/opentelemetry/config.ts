/** Config of envoy.tracers.opentelemetry (envoy.config.trace.v3.OpenTelemetryConfig). */
import { z } from "zod/mini";
import { duration } from "../../../config/common.ts";
import { grpcServiceSchema } from "../../../config/config_source.ts";
import { notSupported } from "../../../config/schema_util.ts";

/** envoy.config.core.v3.HttpService: the OTLP/HTTP endpoint on a cluster. */
const httpServiceSchema = z.strictObject({
  http_uri: z.strictObject({
    uri: z.string().check(z.minLength(1)),
    cluster: z.string().check(z.minLength(1)),
    timeout: duration,
  }),
  request_headers_to_add: z._default(
    z.array(z.strictObject({
      header: z.strictObject({ key: z.string().check(z.minLength(1)), value: z._default(z.string(), "") }),
      append: z.optional(z.boolean()),
      append_action: z.optional(z.string()),
      keep_empty_value: z.optional(z.boolean()),
    })),
    [],
  ),
  retry_policy: notSupported,
});

/** The OpenTelemetryConfig message. */
export const openTelemetryConfigSchema = z.strictObject({
  grpc_service: z.optional(grpcServiceSchema),
  http_service: z.optional(httpServiceSchema),
  service_name: z._default(z.string(), ""),
  resource_detectors: notSupported,
  sampler: notSupported,
  max_cache_size: notSupported,
}).check(z.refine((c) => !(c.grpc_service !== undefined && c.http_service !== undefined), {
  message: "Only one of grpc_service, http_service may be used",
  path: ["http_service"],
}));

/** The parsed OpenTelemetryConfig. */
export type OpenTelemetryConfig = z.infer<typeof openTelemetryConfigSchema>;
