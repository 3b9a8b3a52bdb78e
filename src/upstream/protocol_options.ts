/**
 * A cluster's upstream HTTP protocol options: `typed_extension_protocol_options` with
 * `envoy.extensions.upstreams.http.v3.HttpProtocolOptions` (explicit_http_config, use_downstream_protocol_config,
 * auto_config), the deprecated cluster fields `http_protocol_options` / `http2_protocol_options`, and
 * `common_http_protocol_options`. `protocolSettings` resolves them once per cluster.
 */
import { z } from "zod/mini";
import { envoyEnum, transformWithIssues } from "../config/schema_util.ts";
import { duration, uint32 } from "../config/common.ts";
import { dataSource } from "../transport/tls_config.ts";

const NOT_SUPPORTED = "Field not supported by nuncio";
const unsupported = z.optional(z.never({ error: NOT_SUPPORTED }));

function unsupportedFields<const K extends string>(...names: K[]): Record<K, typeof unsupported> {
  const out = {} as Record<K, typeof unsupported>;
  for (const n of names) out[n] = unsupported;
  return out;
}

/** envoy.config.core.v3.HttpProtocolOptions (cluster and HttpProtocolOptions.common_http_protocol_options). */
export const commonHttpProtocolOptions = z.strictObject({
  idle_timeout: z._default(duration, 3_600_000),
  max_headers_count: z.optional(uint32.check(z.minimum(1))),
  max_requests_per_connection: z.optional(uint32),
  headers_with_underscores_action: z._default(envoyEnum(["ALLOW", "REJECT_REQUEST", "DROP_HEADER"]), "ALLOW"),
  ...unsupportedFields("max_connection_duration", "max_stream_duration", "max_response_headers_kb"),
});

/** envoy.config.core.v3.Http1ProtocolOptions as an upstream option (nothing tunable yet). */
export const http1ProtocolOptions = z.strictObject({
  ...unsupportedFields(
    "allow_absolute_url",
    "accept_http_10",
    "default_host_for_http_10",
    "header_key_format",
    "enable_trailers",
    "allow_chunked_length",
    "override_stream_error_on_invalid_http_message",
    "send_fully_qualified_url",
    "use_balsa_parser",
    "allow_custom_methods",
    "ignore_http_11_upgrade",
  ),
});

/** envoy.config.core.v3.Http2ProtocolOptions as an upstream option. */
export const http2ProtocolOptions = z.strictObject({
  hpack_table_size: z.optional(uint32),
  max_concurrent_streams: z.optional(uint32.check(z.minimum(1), z.maximum(2147483647))),
  initial_stream_window_size: z.optional(uint32.check(z.minimum(65535), z.maximum(2147483647))),
  initial_connection_window_size: z.optional(uint32.check(z.minimum(65535), z.maximum(2147483647))),
  max_outbound_frames: z.optional(uint32.check(z.minimum(1))),
  max_outbound_control_frames: z.optional(uint32.check(z.minimum(1))),
  max_consecutive_inbound_frames_with_empty_payload: z.optional(uint32),
  max_inbound_priority_frames_per_stream: z.optional(uint32),
  max_inbound_window_update_frames_per_data_frame_sent: z.optional(uint32.check(z.minimum(1))),
  ...unsupportedFields(
    "allow_connect",
    "allow_metadata",
    "stream_error_on_invalid_http_messaging",
    "override_stream_error_on_invalid_http_message",
    "custom_settings_parameters",
    "connection_keepalive",
    "use_oghttp2_codec",
    "max_metadata_size",
    "enable_huffman_encoding",
  ),
});

/** The parsed Http2ProtocolOptions. */
export type Http2ProtocolOptionsConfig = z.output<typeof http2ProtocolOptions>;

const explicitHttpConfig = z.strictObject({
  http_protocol_options: z.optional(http1ProtocolOptions),
  http2_protocol_options: z.optional(http2ProtocolOptions),
  ...unsupportedFields("http3_protocol_options"),
}).check(
  z.refine((c) => (c.http_protocol_options !== undefined) !== (c.http2_protocol_options !== undefined), {
    error: "explicit_http_config needs exactly one of http_protocol_options and http2_protocol_options",
  }),
);

const useDownstreamConfig = z.strictObject({
  http_protocol_options: z.optional(http1ProtocolOptions),
  http2_protocol_options: z.optional(http2ProtocolOptions),
  ...unsupportedFields("http3_protocol_options"),
});

const autoConfig = z.strictObject({
  http_protocol_options: z.optional(http1ProtocolOptions),
  http2_protocol_options: z.optional(http2ProtocolOptions),
  ...unsupportedFields("http3_protocol_options", "alternate_protocols_cache_options"),
});

/** The HttpProtocolOptions type URL. */
export const HTTP_PROTOCOL_OPTIONS_TYPE =
  "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions";
/** The HttpProtocolOptions extension name (the usual map key). */
export const HTTP_PROTOCOL_OPTIONS_NAME = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions";

/** envoy.extensions.upstreams.http.v3.HttpProtocolOptions (without "@type"). */
export const httpProtocolOptions = z.strictObject({
  common_http_protocol_options: z.optional(commonHttpProtocolOptions),
  explicit_http_config: z.optional(explicitHttpConfig),
  use_downstream_protocol_config: z.optional(useDownstreamConfig),
  auto_config: z.optional(autoConfig),
  ...unsupportedFields(
    "upstream_http_protocol_options",
    "http_filters",
    "header_validation_config",
    "outlier_detection",
  ),
}).check(z.superRefine((c, ctx) => {
  const n = Number(c.explicit_http_config !== undefined) +
    Number(c.use_downstream_protocol_config !== undefined) +
    Number(c.auto_config !== undefined);
  if (n !== 1) {
    ctx.addIssue({
      code: "custom",
      message:
        "Exactly one of explicit_http_config, use_downstream_protocol_config and auto_config must be set",
    });
  }
}));

/** The parsed HttpProtocolOptions. */
export type HttpProtocolOptionsConfig = z.output<typeof httpProtocolOptions>;

/** Type URL of the redis proxy's upstream options (envoy.filters.network.redis_proxy's RedisProtocolOptions). */
export const REDIS_PROTOCOL_OPTIONS_TYPE =
  "type.googleapis.com/envoy.extensions.filters.network.redis_proxy.v3.RedisProtocolOptions";

/** RedisProtocolOptions: credentials the redis proxy sends as AUTH on each upstream connection. */
const redisProtocolOptions = z.strictObject({
  auth_password: z.optional(dataSource),
  auth_username: z.optional(dataSource),
  ...unsupportedFields("aws_iam", "credentials"),
});

/** The parsed typed_extension_protocol_options: HttpProtocolOptions and RedisProtocolOptions, when present. */
export interface TypedProtocolOptions {
  http?: HttpProtocolOptionsConfig;
  redis?: z.output<typeof redisProtocolOptions>;
}

/**
 * Cluster.typed_extension_protocol_options: a map from extension name to a typed config; HttpProtocolOptions
 * and RedisProtocolOptions are known. Resolves to the parsed options (undefined when the map is empty).
 */
export const typedExtensionProtocolOptions = z.pipe(
  z.record(z.string(), z.looseObject({ "@type": z.string() })),
  transformWithIssues((map, ctx): TypedProtocolOptions | undefined => {
    let out: TypedProtocolOptions | undefined;
    for (const [key, value] of Object.entries(map)) {
      const { "@type": type, ...rest } = value;
      const schema = type === HTTP_PROTOCOL_OPTIONS_TYPE
        ? httpProtocolOptions
        : type === REDIS_PROTOCOL_OPTIONS_TYPE
        ? redisProtocolOptions
        : undefined;
      if (schema === undefined) {
        ctx.addIssue({
          code: "custom",
          path: [key, "@type"],
          message: `${NOT_SUPPORTED}: protocol options "${type}" are not supported`,
        });
        continue;
      }
      const r = schema.safeParse(rest);
      if (!r.success) {
        for (const issue of r.error.issues) {
          ctx.addIssue({ code: "custom", path: [key, ...issue.path], message: issue.message });
        }
        continue;
      }
      out ??= {};
      if (schema === httpProtocolOptions) out.http = r.data as HttpProtocolOptionsConfig;
      else out.redis = r.data as TypedProtocolOptions["redis"];
    }
    return out;
  }),
);

/** Which protocol requests to a cluster use. */
export const UpstreamHttpProtocol = {
  /** HTTP/1.1 (the default). */
  Http1: 0,
  /** HTTP/2 (explicit, or the legacy http2_protocol_options). */
  Http2: 1,
  /** ALPN: HTTP/2 when TLS negotiates h2, else HTTP/1.1 (HTTP/1.1 without TLS). */
  Auto: 2,
  /** The downstream request's protocol. */
  Downstream: 3,
} as const;
/** One of UpstreamHttpProtocol. */
export type UpstreamHttpProtocol = typeof UpstreamHttpProtocol[keyof typeof UpstreamHttpProtocol];

/** A cluster's resolved protocol choice, HTTP/2 options and common options. */
export interface ProtocolSettings {
  protocol: UpstreamHttpProtocol;
  /** HTTP/2 options (empty for HTTP/1.1-only clusters). */
  h2: Http2ProtocolOptionsConfig;
  /** common_http_protocol_options, from the typed options or the cluster field. */
  common: z.output<typeof commonHttpProtocolOptions> | undefined;
}

/** The cluster fields protocolSettings reads. */
export interface ProtocolFields {
  typed_extension_protocol_options?: TypedProtocolOptions | undefined;
  http2_protocol_options?: Http2ProtocolOptionsConfig | undefined;
  common_http_protocol_options?: z.output<typeof commonHttpProtocolOptions> | undefined;
}

/** Resolves a cluster's protocol options (config time). */
export function protocolSettings(c: ProtocolFields): ProtocolSettings {
  const t = c.typed_extension_protocol_options?.http;
  if (t === undefined) {
    const h2 = c.http2_protocol_options;
    return {
      protocol: h2 !== undefined ? UpstreamHttpProtocol.Http2 : UpstreamHttpProtocol.Http1,
      h2: h2 ?? {},
      common: c.common_http_protocol_options,
    };
  }
  const common = t.common_http_protocol_options ?? c.common_http_protocol_options;
  if (t.explicit_http_config !== undefined) {
    const h2 = t.explicit_http_config.http2_protocol_options;
    return {
      protocol: h2 !== undefined ? UpstreamHttpProtocol.Http2 : UpstreamHttpProtocol.Http1,
      h2: h2 ?? {},
      common,
    };
  }
  if (t.use_downstream_protocol_config !== undefined) {
    return {
      protocol: UpstreamHttpProtocol.Downstream,
      h2: t.use_downstream_protocol_config.http2_protocol_options ?? {},
      common,
    };
  }
  return { protocol: UpstreamHttpProtocol.Auto, h2: t.auto_config?.http2_protocol_options ?? {}, common };
}
