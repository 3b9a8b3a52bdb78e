/**
 * Config of envoy.filters.network.http_connection_manager (HttpConnectionManager v3), the subset nuncio
 * implements; known Envoy fields that are not implemented are errors naming the field.
 */
import { configSourceSchema } from "../../../../config/config_source.ts";
import { z } from "zod/mini";
import { duration, uint32 } from "../../../../config/common.ts";
import { NOT_SUPPORTED } from "../../../../config/errors.ts";
import { envoyEnum, notSupported, onlyValues } from "../../../../config/schema_util.ts";
import { typedExtension } from "../../../../config/extension_ref.ts";
import { accessLogEntrySchema } from "../../../../access_log/config.ts";
import { routeConfigurationSchema } from "../../../../http/routing/config.ts";
import { hcmTracingSchema } from "../../../../tracing/config.ts";

const httpProtocolOptions = z.strictObject({
  accept_http_10: z.optional(z.boolean()),
  default_host_for_http_10: z.optional(z.string()),
  allow_absolute_url: z.optional(z.boolean()),
  enable_trailers: onlyValues([true], "nuncio's HTTP/1.1 codec always proxies trailers"),
  allow_chunked_length: onlyValues(
    [false],
    "a request with both Content-Length and Transfer-Encoding: chunked is rejected",
  ),
  header_key_format: notSupported,
  override_stream_error_on_invalid_http_message: onlyValues(
    [false],
    "an invalid HTTP/1.1 request gets its error reply and the connection is closed",
  ),
  send_fully_qualified_url: notSupported,
  allow_custom_methods: onlyValues([true], "nuncio's HTTP/1.1 codec accepts any token as a method"),
});

const H2_STREAM_ERROR = "an invalid HTTP/2 request resets only its stream";

/** envoy.config.core.v3.Http2ProtocolOptions: the fields the HTTP/2 codec implements. */
const http2ProtocolOptions = z.strictObject({
  hpack_table_size: z.optional(uint32),
  max_concurrent_streams: z.optional(uint32.check(z.minimum(1), z.maximum(2147483647))),
  initial_stream_window_size: z.optional(uint32.check(z.minimum(65535), z.maximum(2147483647))),
  initial_connection_window_size: z.optional(uint32.check(z.minimum(65535), z.maximum(2147483647))),
  allow_connect: z.optional(z.literal(false)),
  allow_metadata: z.optional(z.literal(false)),
  max_outbound_frames: z.optional(uint32.check(z.minimum(1))),
  max_outbound_control_frames: z.optional(uint32.check(z.minimum(1))),
  max_consecutive_inbound_frames_with_empty_payload: z.optional(uint32),
  max_inbound_priority_frames_per_stream: z.optional(uint32),
  max_inbound_window_update_frames_per_data_frame_sent: z.optional(uint32.check(z.minimum(1))),
  stream_error_on_invalid_http_messaging: onlyValues([true], H2_STREAM_ERROR),
  override_stream_error_on_invalid_http_message: onlyValues([true], H2_STREAM_ERROR),
  custom_settings_parameters: notSupported,
  connection_keepalive: notSupported,
  // picks Envoy's HTTP/2 library (nghttp2 or oghttp2), not a behaviour: nuncio has its own codec either way
  use_oghttp2_codec: z.optional(z.boolean()),
  max_metadata_size: notSupported,
  enable_huffman_encoding_stats: notSupported,
});

/** The parsed Http2ProtocolOptions. */
export type Http2ProtocolOptionsConfig = z.infer<typeof http2ProtocolOptions>;

const commonHttpProtocolOptions = z.strictObject({
  idle_timeout: z.optional(duration),
  max_connection_duration: notSupported,
  max_headers_count: z.optional(uint32.check(z.minimum(1))),
  max_stream_duration: z.optional(duration),
  headers_with_underscores_action: z.optional(envoyEnum(["ALLOW", "REJECT_REQUEST", "DROP_HEADER"])),
  max_requests_per_connection: z.optional(uint32),
  max_response_headers_kb: notSupported,
});

/** HttpConnectionManager.rds: routes from RDS by name (the main thread's xDS layer owns the subscription). */
const rdsSchema = z.strictObject({
  config_source: configSourceSchema,
  route_config_name: z.string().check(z.minLength(1)),
});

/** The HttpConnectionManager message. */
export const httpConnectionManagerSchema = z.strictObject({
  codec_type: z._default(envoyEnum(["AUTO", "HTTP1", "HTTP2", "HTTP3"]), "AUTO").check(
    z.refine((v) => v !== "HTTP3", { message: "HTTP3 is not supported by nuncio" }),
  ),
  stat_prefix: z.string().check(z.minLength(1)),
  route_config: z.optional(routeConfigurationSchema),
  rds: z.optional(rdsSchema),
  scoped_routes: notSupported,
  http_filters: z._default(z.array(typedExtension("http_filter")), []),
  access_log: z._default(z.array(accessLogEntrySchema), []),
  add_user_agent: z._default(z.boolean(), false),
  use_remote_address: z._default(z.boolean(), false),
  xff_num_trusted_hops: z._default(uint32, 0),
  skip_xff_append: z._default(z.boolean(), false),
  via: z.optional(z.string()),
  generate_request_id: z._default(z.boolean(), true),
  preserve_external_request_id: z._default(z.boolean(), false),
  always_set_request_id_in_response: z._default(z.boolean(), false),
  internal_address_config: z.optional(z.strictObject({
    // no effect: nuncio has no Unix socket listeners (address.pipe is not supported), so no peer is one
    unix_sockets: z.optional(z.boolean()),
    cidr_ranges: z.optional(z.array(z.strictObject({ address_prefix: z.string(), prefix_len: uint32 }))),
  })),
  server_name: z.optional(z.string()),
  server_header_transformation: z._default(
    envoyEnum(["OVERWRITE", "APPEND_IF_ABSENT", "PASS_THROUGH"]),
    "OVERWRITE",
  ),
  max_request_headers_kb: z._default(uint32.check(z.minimum(1), z.maximum(8192)), 60),
  request_headers_timeout: z.optional(duration),
  request_timeout: z.optional(duration),
  stream_idle_timeout: z.optional(duration),
  // HTTP/2 drains with a GOAWAY, then the final GOAWAY once a PING round trip shows the client saw it
  drain_timeout: notSupported,
  delayed_close_timeout: z.optional(duration.check(z.refine((ms) => ms === 0, {
    error: `${NOT_SUPPORTED}: only 0s (nuncio closes a connection as soon as its last bytes are written)`,
  }))),
  common_http_protocol_options: z.optional(commonHttpProtocolOptions),
  http_protocol_options: z.optional(httpProtocolOptions),
  normalize_path: z._default(z.boolean(), false),
  merge_slashes: z._default(z.boolean(), false),
  path_with_escaped_slashes_action: z._default(
    envoyEnum([
      "IMPLEMENTATION_SPECIFIC_DEFAULT",
      "KEEP_UNCHANGED",
      "REJECT_REQUEST",
      "UNESCAPE_AND_REDIRECT",
      "UNESCAPE_AND_FORWARD",
    ]),
    "IMPLEMENTATION_SPECIFIC_DEFAULT",
  ),
  strip_matching_host_port: z._default(z.boolean(), false),
  strip_any_host_port: z._default(z.boolean(), false),
  upgrade_configs: z._default(
    z.array(z.strictObject({
      upgrade_type: z.string().check(z.minLength(1)),
      enabled: z.optional(z.boolean()),
      filters: notSupported,
    })),
    [],
  ),
  proxy_100_continue: z._default(z.boolean(), false),
  http2_protocol_options: z.optional(http2ProtocolOptions),
  tracing: z.optional(hcmTracingSchema),
  local_reply_config: notSupported,
  request_id_extension: notSupported,
  forward_client_cert_details: z._default(
    envoyEnum(["SANITIZE", "FORWARD_ONLY", "APPEND_FORWARD", "SANITIZE_SET", "ALWAYS_FORWARD_ONLY"]),
    "SANITIZE",
  ),
  set_current_client_cert_details: z.optional(z.strictObject({
    subject: z._default(z.boolean(), false),
    cert: z._default(z.boolean(), false),
    chain: z._default(z.boolean(), false),
    dns: z._default(z.boolean(), false),
    uri: z._default(z.boolean(), false),
  })),
  original_ip_detection_extensions: notSupported,
  early_header_mutation_extensions: notSupported,
  access_log_options: notSupported,
  stream_error_on_invalid_http_message: z.optional(z.boolean()),
}).check(
  z.superRefine((c, ctx) => {
    // Envoy's route_specifier oneof (scoped_routes is not supported)
    if ((c.route_config === undefined) === (c.rds === undefined)) {
      ctx.addIssue({
        code: "custom",
        path: [c.rds === undefined ? "route_config" : "rds"],
        message: c.rds === undefined
          ? "One of route_config or rds is required"
          : "route_config and rds are mutually exclusive",
      });
    }
  }),
  z.superRefine((c, ctx) => {
    // Envoy's default for both codecs; each codec's override_stream_error_on_invalid_http_message wins
    const v = c.stream_error_on_invalid_http_message;
    if (v === undefined) return;
    const h1 = c.codec_type !== "HTTP2" &&
      c.http_protocol_options?.override_stream_error_on_invalid_http_message === undefined;
    const h2 = c.codec_type !== "HTTP1" &&
      c.http2_protocol_options?.override_stream_error_on_invalid_http_message === undefined &&
      c.http2_protocol_options?.stream_error_on_invalid_http_messaging === undefined;
    if ((v && h1) || (!v && h2)) {
      ctx.addIssue({
        code: "custom",
        path: ["stream_error_on_invalid_http_message"],
        message: `${NOT_SUPPORTED}: only ${v ? "false" : "true"} for ${v ? "HTTP/1.1" : "HTTP/2"} (${
          v
            ? "an invalid HTTP/1.1 request gets its error reply and the connection is closed"
            : H2_STREAM_ERROR
        })`,
      });
    }
  }),
  z.superRefine((c, ctx) => {
    // the factory would refuse to build otherwise: validate says so first (serve must never fail on it)
    const filters = c.http_filters;
    if (filters.length === 0) {
      ctx.addIssue({
        code: "custom",
        path: ["http_filters"],
        message: "The HTTP filter chain needs a terminal filter such as envoy.filters.http.router, last",
      });
      return;
    }
    filters.forEach((f, i) => {
      if (f?.ext === undefined) return; // its own schema already reported it
      const last = i === filters.length - 1;
      if (f.ext.terminal === true && !last) {
        ctx.addIssue({
          code: "custom",
          path: ["http_filters", i],
          message: `Terminal HTTP filter ${f.ext.name} must be the last filter`,
        });
      } else if (f.ext.terminal !== true && last) {
        ctx.addIssue({
          code: "custom",
          path: ["http_filters", i],
          message:
            `The last HTTP filter must be a terminal filter such as envoy.filters.http.router, not ${f.ext.name}`,
        });
      }
    });
  }),
  z.refine((c) => !(c.strip_matching_host_port && c.strip_any_host_port), {
    message: "strip_matching_host_port and strip_any_host_port are mutually exclusive",
    path: ["strip_any_host_port"],
  }),
);

/** The parsed HttpConnectionManager config. */
export type HttpConnectionManagerConfig = z.infer<typeof httpConnectionManagerSchema>;
