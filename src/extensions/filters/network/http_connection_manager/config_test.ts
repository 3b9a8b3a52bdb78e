import assert from "node:assert/strict";
import "../../../../registry/builtin.ts";
import { httpConnectionManagerSchema } from "./config.ts";
import { resolveHcmOptions } from "./filter.ts";
import { routerSchema } from "../../http/router/config.ts";
import { grpcHttp1BridgeSchema } from "../../http/grpc_http1_bridge/config.ts";

const NS = "Field not supported by nuncio";
const base = {
  stat_prefix: "in",
  route_config: { virtual_hosts: [] },
  http_filters: [{ name: "envoy.filters.http.router" }],
};

/** "path: message" for each issue ("" when valid). */
function errors(
  schema: {
    safeParse(
      v: unknown,
    ): { success: boolean; error?: { issues: { path: PropertyKey[]; message: string }[] } };
  },
  input: unknown,
): string {
  const r = schema.safeParse(input);
  return r.success ? "" : r.error!.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("\n");
}
const hcm = (extra: Record<string, unknown>) => errors(httpConnectionManagerSchema, { ...base, ...extra });

Deno.test("connection manager fields nuncio takes only at its own behaviour", async (t) => {
  await t.step("the values matching nuncio load", () => {
    assert.equal(
      hcm({
        add_user_agent: true,
        delayed_close_timeout: "0s",
        internal_address_config: { unix_sockets: true },
        http_protocol_options: {
          enable_trailers: true,
          allow_chunked_length: false,
          allow_custom_methods: true,
          override_stream_error_on_invalid_http_message: false,
        },
        http2_protocol_options: {
          stream_error_on_invalid_http_messaging: true,
          override_stream_error_on_invalid_http_message: true,
          use_oghttp2_codec: false,
        },
        stream_error_on_invalid_http_message: false,
      }),
      "",
    );
    assert.equal(hcm({ codec_type: "HTTP2", stream_error_on_invalid_http_message: true }), "");
    assert.equal(hcm({ codec_type: "HTTP1", stream_error_on_invalid_http_message: false }), "");
    assert.equal(hcm({ http2_protocol_options: { use_oghttp2_codec: true } }), "");
  });

  await t.step("other values are errors at the field saying what nuncio does", () => {
    const h1 = "an invalid HTTP/1.1 request gets its error reply and the connection is closed";
    const h2 = "an invalid HTTP/2 request resets only its stream";
    const cases: [Record<string, unknown>, string][] = [
      [{ drain_timeout: "5s" }, `drain_timeout: ${NS}`],
      [
        { delayed_close_timeout: "1s" },
        `delayed_close_timeout: ${NS}: only 0s (nuncio closes a connection as soon as its last bytes are written)`,
      ],
      [
        { common_http_protocol_options: { max_connection_duration: "60s" } },
        `common_http_protocol_options.max_connection_duration: ${NS}`,
      ],
      [
        { http_protocol_options: { enable_trailers: false } },
        `http_protocol_options.enable_trailers: ${NS}: only true (nuncio's HTTP/1.1 codec always proxies trailers)`,
      ],
      [
        { http_protocol_options: { allow_chunked_length: true } },
        `http_protocol_options.allow_chunked_length: ${NS}: only false (a request with both Content-Length and Transfer-Encoding: chunked is rejected)`,
      ],
      [
        { http_protocol_options: { allow_custom_methods: false } },
        `http_protocol_options.allow_custom_methods: ${NS}: only true (nuncio's HTTP/1.1 codec accepts any token as a method)`,
      ],
      [
        { http_protocol_options: { override_stream_error_on_invalid_http_message: true } },
        `http_protocol_options.override_stream_error_on_invalid_http_message: ${NS}: only false (${h1})`,
      ],
      [
        { http2_protocol_options: { stream_error_on_invalid_http_messaging: false } },
        `http2_protocol_options.stream_error_on_invalid_http_messaging: ${NS}: only true (${h2})`,
      ],
      [
        { http2_protocol_options: { override_stream_error_on_invalid_http_message: false } },
        `http2_protocol_options.override_stream_error_on_invalid_http_message: ${NS}: only true (${h2})`,
      ],
      [
        { stream_error_on_invalid_http_message: true },
        `stream_error_on_invalid_http_message: ${NS}: only false for HTTP/1.1 (${h1})`,
      ],
      [
        { codec_type: "HTTP2", stream_error_on_invalid_http_message: false },
        `stream_error_on_invalid_http_message: ${NS}: only true for HTTP/2 (${h2})`,
      ],
    ];
    for (const [extra, message] of cases) assert.equal(hcm(extra), message);
  });
});

Deno.test("router and gRPC bridge fields nuncio takes only at its own behaviour", () => {
  assert.equal(
    errors(routerSchema, { dynamic_stats: true, suppress_grpc_request_failure_code_stats: true }),
    "",
  );
  assert.equal(
    errors(routerSchema, { dynamic_stats: false }),
    `dynamic_stats: ${NS}: only true (the router always counts upstream_rq_<code> and upstream_rq_time)`,
  );
  assert.equal(
    errors(routerSchema, { suppress_grpc_request_failure_code_stats: false }),
    `suppress_grpc_request_failure_code_stats: ${NS}: only true (the router never counts a local reply, such as an upstream timeout, in upstream_rq_<code>)`,
  );
  assert.equal(errors(grpcHttp1BridgeSchema, { ignore_query_parameters: false }), "");
  assert.equal(
    errors(grpcHttp1BridgeSchema, { ignore_query_parameters: true }),
    `ignore_query_parameters: ${NS}: only false (a bridged request keeps its query string)`,
  );
});

Deno.test("the HTTP filter chain ends with exactly one terminal filter (validate says what serve would refuse)", () => {
  const router = { name: "envoy.filters.http.router" };
  const buffer = {
    name: "envoy.filters.http.buffer",
    typed_config: {
      "@type": "type.googleapis.com/envoy.extensions.filters.http.buffer.v3.Buffer",
      max_request_bytes: 10,
    },
  };
  assert.equal(hcm({ http_filters: [buffer, router] }), "");
  assert.equal(
    hcm({ http_filters: [] }),
    "http_filters: The HTTP filter chain needs a terminal filter such as envoy.filters.http.router, last",
  );
  assert.equal(
    hcm({ http_filters: [router, buffer] }),
    [
      "http_filters.0: Terminal HTTP filter envoy.filters.http.router must be the last filter",
      "http_filters.1: The last HTTP filter must be a terminal filter such as envoy.filters.http.router, not envoy.filters.http.buffer",
    ].join("\n"),
  );
});

Deno.test("http_connection_manager: rds is accepted, exactly one of route_config and rds", () => {
  const { route_config: _rc, ...noRoutes } = base as Record<string, unknown>;
  const rds = { config_source: { ads: {} }, route_config_name: "r" };
  assert.equal(errors(httpConnectionManagerSchema, { ...noRoutes, rds }), "");
  assert.match(
    errors(httpConnectionManagerSchema, noRoutes),
    /route_config: One of route_config or rds is required/,
  );
  assert.match(
    errors(httpConnectionManagerSchema, { ...base, rds }),
    /rds: route_config and rds are mutually exclusive/,
  );
  assert.match(
    errors(httpConnectionManagerSchema, { ...noRoutes, rds: { config_source: {} } }),
    /rds\.route_config_name/,
  );
});

Deno.test("server_name: absent or empty (proto3's default on the wire) is Envoy's \"envoy\"", () => {
  const name = (extra: Record<string, unknown>) =>
    resolveHcmOptions(httpConnectionManagerSchema.parse({ ...base, ...extra })).serverName;
  assert.equal(name({}), "envoy");
  assert.equal(name({ server_name: "" }), "envoy");
  assert.equal(name({ server_name: "edge" }), "edge");
});
