import assert from "node:assert/strict";
import { clusterSchema } from "./config.ts";
import {
  HTTP_PROTOCOL_OPTIONS_NAME,
  HTTP_PROTOCOL_OPTIONS_TYPE,
  protocolSettings,
} from "./protocol_options.ts";

const base = { name: "svc" };

function typed(options: Record<string, unknown>, type = HTTP_PROTOCOL_OPTIONS_TYPE) {
  return {
    ...base,
    typed_extension_protocol_options: { [HTTP_PROTOCOL_OPTIONS_NAME]: { "@type": type, ...options } },
  };
}

function errors(input: unknown): string {
  const r = clusterSchema.safeParse(input);
  return r.success ? "" : r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("\n");
}

Deno.test("upstream protocol options", async (t) => {
  await t.step("HTTP/1.1 by default", () => {
    const s = protocolSettings(clusterSchema.parse(base));
    assert.equal(s.protocol, 0);
    assert.equal(s.common, undefined);
  });

  await t.step("explicit_http_config with http2_protocol_options", () => {
    const c = clusterSchema.parse(typed({
      common_http_protocol_options: { idle_timeout: "30s" },
      explicit_http_config: {
        http2_protocol_options: { max_concurrent_streams: 10, initial_stream_window_size: 131072 },
      },
    }));
    const s = protocolSettings(c);
    assert.equal(s.protocol, 1);
    assert.equal(s.h2.max_concurrent_streams, 10);
    assert.equal(s.h2.initial_stream_window_size, 131072);
    assert.equal(s.common!.idle_timeout, 30000);
  });

  await t.step("explicit HTTP/1.1, auto_config, use_downstream_protocol_config", () => {
    assert.equal(
      protocolSettings(clusterSchema.parse(typed({ explicit_http_config: { http_protocol_options: {} } })))
        .protocol,
      0,
    );
    assert.equal(protocolSettings(clusterSchema.parse(typed({ auto_config: {} }))).protocol, 2);
    assert.equal(
      protocolSettings(clusterSchema.parse(typed({ use_downstream_protocol_config: {} }))).protocol,
      3,
    );
  });

  await t.step("the deprecated cluster http2_protocol_options means HTTP/2", () => {
    const s = protocolSettings(
      clusterSchema.parse({ ...base, http2_protocol_options: { hpack_table_size: 0 } }),
    );
    assert.equal(s.protocol, 1);
    assert.equal(s.h2.hpack_table_size, 0);
  });

  await t.step("errors name the field", () => {
    const key = `typed_extension_protocol_options.${HTTP_PROTOCOL_OPTIONS_NAME}`;
    assert.match(
      errors(typed({}, "type.googleapis.com/envoy.extensions.upstreams.tcp.v3.TcpProtocolOptions")),
      /@type: Field not supported by nuncio: protocol options ".*TcpProtocolOptions" are not supported/,
    );
    assert.match(
      errors(typed({ auto_config: {}, explicit_http_config: { http_protocol_options: {} } })),
      /Exactly one of explicit_http_config, use_downstream_protocol_config and auto_config/,
    );
    assert.match(errors(typed({})), /Exactly one of/);
    assert.equal(
      errors(typed({ explicit_http_config: { http2_protocol_options: { allow_connect: true } } })),
      `${key}.explicit_http_config.http2_protocol_options.allow_connect: Field not supported by nuncio`,
    );
    assert.match(
      errors(
        typed({ explicit_http_config: { http2_protocol_options: { initial_stream_window_size: 100 } } }),
      ),
      /initial_stream_window_size/,
    );
    assert.match(
      errors({ ...typed({ auto_config: {} }), http2_protocol_options: {} }),
      /cannot be combined with the deprecated/,
    );
    assert.match(
      errors(typed({ auto_config: { http3_protocol_options: {} } })),
      /Field not supported by nuncio/,
    );
  });
});
