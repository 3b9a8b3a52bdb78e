/** Config of envoy.tracers.zipkin (envoy.config.trace.v3.ZipkinConfig). */
import { z } from "zod/mini";
import { NOT_SUPPORTED } from "../../../config/errors.ts";
import { envoyEnum } from "../../../config/schema_util.ts";

/** The ZipkinConfig message. */
export const zipkinConfigSchema = z.strictObject({
  collector_cluster: z.string().check(z.minLength(1)),
  collector_endpoint: z.string().check(z.minLength(1)),
  trace_id_128bit: z._default(z.boolean(), false),
  shared_span_context: z._default(z.boolean(), true),
  collector_endpoint_version: z._default(
    envoyEnum(["DEPRECATED_AND_UNAVAILABLE_DO_NOT_USE", "HTTP_JSON", "HTTP_PROTO", "GRPC"]),
    "HTTP_JSON",
  ).check(z.refine((v) => v === "HTTP_JSON", {
    message: `${NOT_SUPPORTED}: only HTTP_JSON (Zipkin API v2, JSON over HTTP)`,
  })),
  collector_hostname: z._default(z.string(), ""),
  split_spans_for_request: z._default(z.boolean(), false),
});

/** The parsed ZipkinConfig. */
export type ZipkinConfig = z.infer<typeof zipkinConfigSchema>;
