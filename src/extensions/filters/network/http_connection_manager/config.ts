/**
 * Config of envoy.filters.network.http_connection_manager (HttpConnectionManager v3), the subset nuncio
 * implements; known Envoy fields that are not implemented are errors naming the field.
 */
import { z } from "zod";
import { duration, uint32 } from "../../../../config/common.ts";
import { notSupported } from "../../../../config/schema_util.ts";
import { typedExtension } from "../../../../config/extension_ref.ts";
import { accessLogEntrySchema } from "../../../../access_log/config.ts";
import { routeConfigurationSchema } from "../../../../http/routing/config.ts";

const httpProtocolOptions = z.strictObject({
  accept_http_10: z.boolean().optional(),
  default_host_for_http_10: z.string().optional(),
  allow_absolute_url: z.boolean().optional(),
  enable_trailers: z.boolean().optional(),
  allow_chunked_length: z.boolean().optional(),
  header_key_format: notSupported,
  override_stream_error_on_invalid_http_message: z.boolean().optional(),
  send_fully_qualified_url: notSupported,
  allow_custom_methods: z.boolean().optional(),
});

/** envoy.config.core.v3.Http2ProtocolOptions: the fields the HTTP/2 codec implements. */
const http2ProtocolOptions = z.strictObject({
  hpack_table_size: uint32.optional(),
  max_concurrent_streams: uint32.min(1).max(2147483647).optional(),
  initial_stream_window_size: uint32.min(65535).max(2147483647).optional(),
  initial_connection_window_size: uint32.min(65535).max(2147483647).optional(),
  allow_connect: z.literal(false).optional(),
  allow_metadata: z.literal(false).optional(),
  max_outbound_frames: uint32.min(1).optional(),
  max_outbound_control_frames: uint32.min(1).optional(),
  max_consecutive_inbound_frames_with_empty_payload: uint32.optional(),
  max_inbound_priority_frames_per_stream: uint32.optional(),
  max_inbound_window_update_frames_per_data_frame_sent: uint32.min(1).optional(),
  stream_error_on_invalid_http_messaging: z.boolean().optional(),
  override_stream_error_on_invalid_http_message: z.boolean().optional(),
  custom_settings_parameters: notSupported,
  connection_keepalive: notSupported,
  use_oghttp2_codec: z.boolean().optional(),
  max_metadata_size: notSupported,
  enable_huffman_encoding_stats: notSupported,
});

/** The parsed Http2ProtocolOptions. */
export type Http2ProtocolOptionsConfig = z.infer<typeof http2ProtocolOptions>;

const commonHttpProtocolOptions = z.strictObject({
  idle_timeout: duration.optional(),
  max_connection_duration: duration.optional(),
  max_headers_count: uint32.min(1).optional(),
  max_stream_duration: duration.optional(),
  headers_with_underscores_action: z.enum(["ALLOW", "REJECT_REQUEST", "DROP_HEADER"]).optional(),
  max_requests_per_connection: uint32.optional(),
  max_response_headers_kb: notSupported,
});

/** The HttpConnectionManager message. */
export const httpConnectionManagerSchema = z.strictObject({
  codec_type: z.enum(["AUTO", "HTTP1", "HTTP2", "HTTP3"]).default("AUTO").refine(
    (v) => v !== "HTTP3",
    { message: "HTTP3 is not supported by nuncio" },
  ),
  stat_prefix: z.string().min(1),
  route_config: routeConfigurationSchema.optional(),
  rds: notSupported,
  scoped_routes: notSupported,
  http_filters: z.array(typedExtension("http_filter")).default([]),
  access_log: z.array(accessLogEntrySchema).default([]),
  add_user_agent: z.boolean().optional(),
  use_remote_address: z.boolean().default(false),
  xff_num_trusted_hops: uint32.default(0),
  skip_xff_append: z.boolean().default(false),
  via: z.string().optional(),
  generate_request_id: z.boolean().default(true),
  preserve_external_request_id: z.boolean().default(false),
  always_set_request_id_in_response: z.boolean().default(false),
  internal_address_config: z.strictObject({
    unix_sockets: z.boolean().optional(),
    cidr_ranges: z.array(z.strictObject({ address_prefix: z.string(), prefix_len: uint32 })).optional(),
  }).optional(),
  server_name: z.string().optional(),
  server_header_transformation: z.enum(["OVERWRITE", "APPEND_IF_ABSENT", "PASS_THROUGH"]).default(
    "OVERWRITE",
  ),
  max_request_headers_kb: uint32.min(1).max(8192).default(60),
  request_headers_timeout: duration.optional(),
  request_timeout: duration.optional(),
  stream_idle_timeout: duration.optional(),
  drain_timeout: duration.optional(),
  delayed_close_timeout: duration.optional(),
  common_http_protocol_options: commonHttpProtocolOptions.optional(),
  http_protocol_options: httpProtocolOptions.optional(),
  normalize_path: z.boolean().default(false),
  merge_slashes: z.boolean().default(false),
  path_with_escaped_slashes_action: z.enum([
    "IMPLEMENTATION_SPECIFIC_DEFAULT",
    "KEEP_UNCHANGED",
    "REJECT_REQUEST",
    "UNESCAPE_AND_REDIRECT",
    "UNESCAPE_AND_FORWARD",
  ]).default("IMPLEMENTATION_SPECIFIC_DEFAULT"),
  strip_matching_host_port: z.boolean().default(false),
  strip_any_host_port: z.boolean().default(false),
  upgrade_configs: z.array(z.strictObject({
    upgrade_type: z.string().min(1),
    enabled: z.boolean().optional(),
    filters: notSupported,
  })).default([]),
  proxy_100_continue: z.boolean().default(false),
  http2_protocol_options: http2ProtocolOptions.optional(),
  tracing: notSupported,
  local_reply_config: notSupported,
  request_id_extension: notSupported,
  forward_client_cert_details: notSupported,
  set_current_client_cert_details: notSupported,
  original_ip_detection_extensions: notSupported,
  early_header_mutation_extensions: notSupported,
  access_log_options: notSupported,
  stream_error_on_invalid_http_message: z.boolean().optional(),
}).refine((c) => c.route_config !== undefined, {
  message: "route_config is required (rds arrives with dynamic configuration)",
  path: ["route_config"],
}).refine((c) => !(c.strip_matching_host_port && c.strip_any_host_port), {
  message: "strip_matching_host_port and strip_any_host_port are mutually exclusive",
  path: ["strip_any_host_port"],
});

/** The parsed HttpConnectionManager config. */
export type HttpConnectionManagerConfig = z.infer<typeof httpConnectionManagerSchema>;
