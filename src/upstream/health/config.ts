/** zod schema of envoy.config.core.v3.HealthCheck (HTTP, TCP and gRPC checkers; durations in ms). */
import { z } from "zod/mini";
import { envoyEnum, integer, transformWithIssues } from "../../config/schema_util.ts";
import { duration, headerValueOption, uint32 } from "../../config/common.ts";

const NOT_SUPPORTED = "Field not supported by nuncio";
const unsupported = z.optional(z.never({ error: NOT_SUPPORTED }));
const positive = (what: string) =>
  duration.check(z.refine((ms) => ms > 0, { error: `${what} must be positive` }));

/** HealthCheck.Payload: hex `text` or base64 `binary`, parsed to bytes. */
const payload = z.pipe(
  z.strictObject({
    text: z.optional(
      z.string().check(
        z.regex(/^([0-9a-fA-F]{2})+$/, { error: "text must be an even number of hex digits" }),
      ),
    ),
    binary: z.optional(z.string()),
  }),
  transformWithIssues((p, ctx): Uint8Array => {
    if ((p.text === undefined) === (p.binary === undefined)) {
      ctx.addIssue({ code: "custom", message: "Exactly one of text and binary must be set" });
      return z.NEVER;
    }
    if (p.text !== undefined) {
      const out = new Uint8Array(p.text.length / 2);
      for (let i = 0; i < out.length; i++) out[i] = parseInt(p.text.slice(2 * i, 2 * i + 2), 16);
      return out;
    }
    try {
      return Uint8Array.from(atob(p.binary!), (c) => c.charCodeAt(0));
    } catch {
      ctx.addIssue({ code: "custom", path: ["binary"], message: "binary must be base64" });
      return z.NEVER;
    }
  }),
);

/** envoy.type.v3.Int64Range [start, end). */
const statusRange = z.strictObject({
  start: integer.check(z.minimum(100)),
  end: integer.check(z.maximum(600)),
}).check(z.refine((r) => r.start < r.end, { error: "start must be below end" }));

const METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "TRACE", "PATCH"] as const;

const httpHealthCheck = z.strictObject({
  host: z.optional(z.string()),
  path: z.string().check(z.regex(/^\//, { error: "path must start with /" })),
  request_headers_to_add: z._default(z.array(headerValueOption), []),
  request_headers_to_remove: z._default(z.array(z.string().check(z.minLength(1))), []),
  expected_statuses: z.optional(z.array(statusRange)),
  retriable_statuses: z._default(z.array(statusRange), []),
  codec_client_type: z._default(envoyEnum(["HTTP1", "HTTP2", "HTTP3"]), "HTTP1").check(
    z.refine((c) => c === "HTTP1", {
      error: `${NOT_SUPPORTED}: only HTTP1 health checks are supported`,
    }),
  ),
  method: z._default(
    // a RequestMethod enum: case-insensitive, as Envoy reads enums; METHOD_UNSPECIFIED (0) means GET
    z.pipe(
      z.string().check(
        z.toUpperCase(),
        z.refine((m) => m === "METHOD_UNSPECIFIED" || (METHODS as readonly string[]).includes(m), {
          error: `method must be one of ${METHODS.join(", ")}`,
        }),
      ),
      z.transform((m) => m === "METHOD_UNSPECIFIED" ? "GET" : m),
    ),
    "GET",
  ),
  // bounds the bytes kept for `receive` matching, which is not supported: no effect, as in Envoy without it
  response_buffer_size: z.optional(uint32),
  send: unsupported,
  receive: unsupported,
  service_name_matcher: unsupported,
});

/** GrpcHealthCheck: grpc.health.v1.Health/Check with HealthCheckRequest.service = service_name. */
const grpcHealthCheck = z.strictObject({
  service_name: z._default(z.string(), ""),
  /** :authority of the check; the cluster name when empty (as Envoy). */
  authority: z._default(z.string(), ""),
  initial_metadata: z._default(z.array(headerValueOption).check(z.maxLength(1000)), []),
});

const tcpHealthCheck = z.strictObject({
  send: z.optional(payload),
  receive: z._default(z.array(payload), []),
  proxy_protocol_config: unsupported,
});

/** HealthCheck. */
export const healthCheckSchema = z.strictObject({
  timeout: positive("timeout"),
  interval: positive("interval"),
  initial_jitter: z._default(duration, 0),
  interval_jitter: z._default(duration, 0),
  interval_jitter_percent: z._default(uint32, 0),
  unhealthy_threshold: uint32.check(z.minimum(1)),
  healthy_threshold: uint32.check(z.minimum(1)),
  reuse_connection: z._default(z.boolean(), true),
  no_traffic_interval: z._default(positive("no_traffic_interval"), 60_000),
  no_traffic_healthy_interval: z.optional(positive("no_traffic_healthy_interval")),
  unhealthy_interval: z.optional(positive("unhealthy_interval")),
  unhealthy_edge_interval: z.optional(positive("unhealthy_edge_interval")),
  healthy_edge_interval: z.optional(positive("healthy_edge_interval")),
  event_log_path: z.optional(z.string().check(z.minLength(1))),
  always_log_health_check_failures: z._default(z.boolean(), false),
  always_log_health_check_success: z._default(z.boolean(), false),
  http_health_check: z.optional(httpHealthCheck),
  tcp_health_check: z.optional(tcpHealthCheck),
  grpc_health_check: z.optional(grpcHealthCheck),
  custom_health_check: unsupported,
  alt_port: unsupported,
  event_logger: unsupported,
  tls_options: unsupported,
  transport_socket_match_criteria: unsupported,
}).check(z.superRefine((c, ctx) => {
  const kinds = [c.http_health_check, c.tcp_health_check, c.grpc_health_check].filter((k) => k !== undefined)
    .length;
  if (kinds !== 1) {
    ctx.addIssue({
      code: "custom",
      message: "Exactly one of http_health_check, tcp_health_check, grpc_health_check must be set",
    });
  }
}));

/** A parsed HealthCheck. */
export type HealthCheckConfig = z.output<typeof healthCheckSchema>;

/** Cluster.health_checks: Envoy supports at most one. */
export const healthChecksSchema = z.array(healthCheckSchema).check(z.maxLength(1, {
  error: "Only one health check per cluster is supported",
}));
