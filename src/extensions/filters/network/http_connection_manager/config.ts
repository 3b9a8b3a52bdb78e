/**
 * Config of envoy.filters.network.http_connection_manager (HttpConnectionManager v3), the subset nuncio
 * implements; known Envoy fields that are not implemented are errors naming the field.
 */
import { z } from "zod/mini";
import { duration, uint32 } from "../../../../config/common.ts";
import { envoyEnum, notSupported } from "../../../../config/schema_util.ts";
import { typedExtension } from "../../../../config/extension_ref.ts";
import { accessLogEntrySchema } from "../../../../access_log/config.ts";
import { routeConfigurationSchema } from "../../../../http/routing/config.ts";

const httpProtocolOptions = z.strictObject({
  accept_http_10: z.optional(z.boolean()),
  default_host_for_http_10: z.optional(z.string()),
  allow_absolute_url: z.optional(z.boolean()),
  enable_trailers: z.optional(z.boolean()),
  allow_chunked_length: z.optional(z.boolean()),
  header_key_format: notSupported,
  override_stream_error_on_invalid_http_message: z.optional(z.boolean()),
  send_fully_qualified_url: notSupported,
  allow_custom_methods: z.optional(z.boolean()),
});

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
  stream_error_on_invalid_http_messaging: z.optional(z.boolean()),
  override_stream_error_on_invalid_http_message: z.optional(z.boolean()),
  custom_settings_parameters: notSupported,
  connection_keepalive: notSupported,
  use_oghttp2_codec: z.optional(z.boolean()),
  max_metadata_size: notSupported,
  enable_huffman_encoding_stats: notSupported,
});

/** The parsed Http2ProtocolOptions. */
export type Http2ProtocolOptionsConfig = z.infer<typeof http2ProtocolOptions>;

const commonHttpProtocolOptions = z.strictObject({
  idle_timeout: z.optional(duration),
  max_connection_duration: z.optional(duration),
  max_headers_count: z.optional(uint32.check(z.minimum(1))),
  max_stream_duration: z.optional(duration),
  headers_with_underscores_action: z.optional(envoyEnum(["ALLOW", "REJECT_REQUEST", "DROP_HEADER"])),
  max_requests_per_connection: z.optional(uint32),
  max_response_headers_kb: notSupported,
});

/** The HttpConnectionManager message. */
export const httpConnectionManagerSchema = z.strictObject({
  codec_type: z._default(envoyEnum(["AUTO", "HTTP1", "HTTP2", "HTTP3"]), "AUTO").check(
    z.refine((v) => v !== "HTTP3", { message: "HTTP3 is not supported by nuncio" }),
  ),
  stat_prefix: z.string().check(z.minLength(1)),
  route_config: z.optional(routeConfigurationSchema),
  rds: notSupported,
  scoped_routes: notSupported,
  http_filters: z._default(z.array(typedExtension("http_filter")), []),
  access_log: z._default(z.array(accessLogEntrySchema), []),
  add_user_agent: z.optional(z.boolean()),
  use_remote_address: z._default(z.boolean(), false),
  xff_num_trusted_hops: z._default(uint32, 0),
  skip_xff_append: z._default(z.boolean(), false),
  via: z.optional(z.string()),
  generate_request_id: z._default(z.boolean(), true),
  preserve_external_request_id: z._default(z.boolean(), false),
  always_set_request_id_in_response: z._default(z.boolean(), false),
  internal_address_config: z.optional(z.strictObject({
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
  drain_timeout: z.optional(duration),
  delayed_close_timeout: z.optional(duration),
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
  tracing: notSupported,
  local_reply_config: notSupported,
  request_id_extension: notSupported,
  forward_client_cert_details: notSupported,
  set_current_client_cert_details: notSupported,
  original_ip_detection_extensions: notSupported,
  early_header_mutation_extensions: notSupported,
  access_log_options: notSupported,
  stream_error_on_invalid_http_message: z.optional(z.boolean()),
}).check(
  z.refine((c) => c.route_config !== undefined, {
    message: "route_config is required (rds arrives with dynamic configuration)",
    path: ["route_config"],
  }),
  z.refine((c) => !(c.strip_matching_host_port && c.strip_any_host_port), {
    message: "strip_matching_host_port and strip_any_host_port are mutually exclusive",
    path: ["strip_any_host_port"],
  }),
);

/** The parsed HttpConnectionManager config. */
export type HttpConnectionManagerConfig = z.infer<typeof httpConnectionManagerSchema>;
