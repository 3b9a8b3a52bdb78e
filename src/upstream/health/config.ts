/** zod schema of envoy.config.core.v3.HealthCheck (HTTP, TCP and gRPC checkers; durations in ms). */
import { z } from "zod";
import { duration, headerValueOption, uint32 } from "../../config/common.ts";

const NOT_SUPPORTED = "Field not supported by nuncio";
const unsupported = z.never({ error: NOT_SUPPORTED }).optional();
const positive = (what: string) => duration.refine((ms) => ms > 0, { error: `${what} must be positive` });

/** HealthCheck.Payload: hex `text` or base64 `binary`, parsed to bytes. */
const payload = z.strictObject({
  text: z.string().regex(/^([0-9a-fA-F]{2})+$/, { error: "text must be an even number of hex digits" })
    .optional(),
  binary: z.string().optional(),
}).transform((p, ctx): Uint8Array => {
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
});

/** envoy.type.v3.Int64Range [start, end). */
const statusRange = z.strictObject({ start: z.number().int().min(100), end: z.number().int().max(600) })
  .refine((r) => r.start < r.end, { error: "start must be below end" });

const METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "TRACE", "PATCH"] as const;

const httpHealthCheck = z.strictObject({
  host: z.string().optional(),
  path: z.string().regex(/^\//, { error: "path must start with /" }),
  request_headers_to_add: z.array(headerValueOption).default([]),
  request_headers_to_remove: z.array(z.string().min(1)).default([]),
  expected_statuses: z.array(statusRange).optional(),
  retriable_statuses: z.array(statusRange).default([]),
  codec_client_type: z.enum(["HTTP1", "HTTP2", "HTTP3"]).default("HTTP1").refine((c) => c === "HTTP1", {
    error: `${NOT_SUPPORTED}: only HTTP1 health checks are supported`,
  }),
  method: z.string().refine((m) => (METHODS as readonly string[]).includes(m), {
    error: `method must be one of ${METHODS.join(", ")}`,
  }).default("GET"),
  response_buffer_size: uint32.optional(),
  send: unsupported,
  receive: unsupported,
  service_name_matcher: unsupported,
});

/** GrpcHealthCheck: grpc.health.v1.Health/Check with HealthCheckRequest.service = service_name. */
const grpcHealthCheck = z.strictObject({
  service_name: z.string().default(""),
  /** :authority of the check; the cluster name when empty (as Envoy). */
  authority: z.string().default(""),
  initial_metadata: z.array(headerValueOption).max(1000).default([]),
});

const tcpHealthCheck = z.strictObject({
  send: payload.optional(),
  receive: z.array(payload).default([]),
  proxy_protocol_config: unsupported,
});

/** HealthCheck. */
export const healthCheckSchema = z.strictObject({
  timeout: positive("timeout"),
  interval: positive("interval"),
  initial_jitter: duration.default(0),
  interval_jitter: duration.default(0),
  interval_jitter_percent: uint32.default(0),
  unhealthy_threshold: uint32.min(1),
  healthy_threshold: uint32.min(1),
  reuse_connection: z.boolean().default(true),
  no_traffic_interval: positive("no_traffic_interval").default(60_000),
  no_traffic_healthy_interval: positive("no_traffic_healthy_interval").optional(),
  unhealthy_interval: positive("unhealthy_interval").optional(),
  unhealthy_edge_interval: positive("unhealthy_edge_interval").optional(),
  healthy_edge_interval: positive("healthy_edge_interval").optional(),
  event_log_path: z.string().min(1).optional(),
  always_log_health_check_failures: z.boolean().default(false),
  always_log_health_check_success: z.boolean().default(false),
  http_health_check: httpHealthCheck.optional(),
  tcp_health_check: tcpHealthCheck.optional(),
  grpc_health_check: grpcHealthCheck.optional(),
  custom_health_check: unsupported,
  alt_port: unsupported,
  event_logger: unsupported,
  tls_options: unsupported,
  transport_socket_match_criteria: unsupported,
}).superRefine((c, ctx) => {
  const kinds = [c.http_health_check, c.tcp_health_check, c.grpc_health_check].filter((k) => k !== undefined)
    .length;
  if (kinds !== 1) {
    ctx.addIssue({
      code: "custom",
      message: "Exactly one of http_health_check, tcp_health_check, grpc_health_check must be set",
    });
  }
});

/** A parsed HealthCheck. */
export type HealthCheckConfig = z.output<typeof healthCheckSchema>;

/** Cluster.health_checks: Envoy supports at most one. */
export const healthChecksSchema = z.array(healthCheckSchema).max(1, {
  error: "Only one health check per cluster is supported",
});
