import assert from "node:assert/strict";
import "../../registry/builtin.ts";
import { listenerSchema } from "../../config/listener.ts";
import {
  decodeAny,
  decodeMessage,
  durationText,
  encodeAny,
  UNDECODED_KEY,
  XdsDecodeError,
  XdsEncodeError,
  xdsRoot,
} from "./mod.ts";

const T = "type.googleapis.com/";
const CLUSTER = `${T}envoy.config.cluster.v3.Cluster`;
const LISTENER = `${T}envoy.config.listener.v3.Listener`;
const HCM = `${T}envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager`;

function roundTrip(url: string, json: Record<string, unknown>): Record<string, unknown> {
  const { "@type": _t, ...fields } = decodeAny(url, encodeAny(url, json));
  return fields;
}

Deno.test("wrappers, durations, enums, 64-bit integers and oneofs take their YAML form", () => {
  const cluster = {
    name: "c",
    type: "STRICT_DNS",
    lb_policy: "LEAST_REQUEST",
    connect_timeout: "0.25s",
    dns_refresh_rate: "-1.000000001s",
    per_connection_buffer_limit_bytes: 32768,
    respect_dns_ttl: true,
    circuit_breakers: { thresholds: [{ priority: "HIGH", max_connections: 7, track_remaining: true }] },
    least_request_lb_config: { choice_count: 3 },
    common_lb_config: { healthy_panic_threshold: { value: 50.5 } },
    outlier_detection: { interval: "10s", max_ejection_time: "300s" },
    upstream_connection_options: { tcp_keepalive: { keepalive_probes: 3 } },
  };
  assert.deepEqual(roundTrip(CLUSTER, cluster), cluster);
  // uint64 (max_requests_per_connection is a UInt32Value; track_cluster_stats has none): use a uint64 wrapper
  const rl = `${T}envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit`;
  const tokens = { stat_prefix: "x", token_bucket: { max_tokens: 5, fill_interval: "1s" } };
  assert.deepEqual(roundTrip(rl, tokens), tokens);
  const u64 = `${T}google.protobuf.UInt64Value`;
  assert.deepEqual(decodeAny(u64, encodeAny(u64, { value: "18446744073709551615" })), {
    "@type": u64,
    value: "18446744073709551615",
  });
  assert.deepEqual(decodeAny(u64, encodeAny(u64, { value: 42 })), { "@type": u64, value: "42" });
});

Deno.test("unset fields are absent: implicit-presence defaults are left out, wrappers keep their zero", () => {
  const fields = roundTrip(CLUSTER, {
    name: "c",
    type: "STATIC", // enum 0
    lb_policy: "ROUND_ROBIN", // enum 0
    per_connection_buffer_limit_bytes: 0, // UInt32Value: present even at 0
    ignore_health_on_host_removal: false, // plain bool at its default
  });
  assert.deepEqual(fields, { name: "c", type: "STATIC", per_connection_buffer_limit_bytes: 0 });
});

Deno.test("Struct, Value, ListValue, Timestamp, bytes and maps", () => {
  const md = `${T}envoy.config.core.v3.Metadata`;
  const metadata = {
    filter_metadata: {
      "envoy.lb": { canary: true, weight: 1.5, tags: ["a", null, { deep: [1, 2] }], none: null, s: "x" },
    },
  };
  assert.deepEqual(roundTrip(md, metadata), metadata);
  const ts = `${T}google.protobuf.Timestamp`;
  assert.deepEqual(decodeAny(ts, encodeAny(ts, { value: "2024-02-29T12:34:56.789Z" })), {
    "@type": ts,
    value: "2024-02-29T12:34:56.789Z",
  });
  const ds = `${T}envoy.config.core.v3.DataSource`;
  assert.deepEqual(roundTrip(ds, { inline_bytes: "AAEC/w==" }), { inline_bytes: "AAEC/w==" });
  assert.equal(durationText(0, 500_000_000), "0.5s");
  assert.equal(durationText(0, -500_000_000), "-0.5s");
  assert.equal(durationText(90, 0), "90s");
});

Deno.test("nested Any keeps @type; TypedStruct stays a Struct payload", () => {
  const listener = {
    name: "l",
    address: { socket_address: { address: "127.0.0.1", port_value: 10000 } },
    filter_chains: [{
      filters: [{
        name: "envoy.filters.network.http_connection_manager",
        typed_config: {
          "@type": HCM,
          stat_prefix: "in",
          route_config: { virtual_hosts: [{ name: "v", domains: ["*"] }] },
          http_filters: [{
            name: "envoy.filters.http.router",
            typed_config: {
              "@type": `${T}udpa.type.v1.TypedStruct`,
              type_url: `${T}envoy.extensions.filters.http.router.v3.Router`,
              value: { suppress_envoy_headers: true },
            },
          }],
        },
      }],
    }],
  };
  assert.deepEqual(roundTrip(LISTENER, listener), listener);
  assert.ok(listenerSchema.safeParse(roundTrip(LISTENER, listener)).success);
});

Deno.test("an Any of a type nuncio does not know is kept with a marker, and the schema names the type", () => {
  const root = xdsRoot();
  const hcm = root.lookupType(
    "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
  );
  const wasm = `${T}envoy.extensions.filters.http.wasm.v3.Wasm`;
  const hcmBytes = hcm.encode(hcm.fromObject({
    stat_prefix: "in",
    route_config: { virtual_hosts: [{ name: "v", domains: ["*"] }] },
    http_filters: [
      { name: "envoy.filters.http.wasm", typed_config: { type_url: wasm, value: new Uint8Array([8, 1]) } },
      {
        name: "envoy.filters.http.router",
        typed_config: { type_url: `${T}envoy.extensions.filters.http.router.v3.Router` },
      },
    ],
  })).finish();
  const l = root.lookupType("envoy.config.listener.v3.Listener");
  const bytes = l.encode(l.fromObject({
    name: "l",
    address: { socket_address: { address: "127.0.0.1", port_value: 1 } },
    filter_chains: [{ filters: [{ name: "hcm", typed_config: { type_url: HCM, value: hcmBytes } }] }],
  })).finish();
  // deno-lint-ignore no-explicit-any -- digging into decoded JSON
  const decoded: any = decodeAny(LISTENER, bytes);
  const filter0 = decoded.filter_chains[0].filters[0].typed_config.http_filters[0].typed_config;
  assert.equal(filter0["@type"], wasm);
  assert.match(filter0[UNDECODED_KEY], /unknown to nuncio/);
  const { "@type": _t, ...fields } = decoded;
  const r = listenerSchema.safeParse(fields);
  assert.ok(!r.success);
  assert.ok(
    r.error.issues.some((i) => i.message.includes(`Unknown or unsupported http filter type "${wasm}"`)),
    JSON.stringify(r.error.issues),
  );
});

Deno.test("malformed bytes, unknown types and deep nesting throw XdsDecodeError", () => {
  // a length-delimited field whose length runs past the end
  assert.throws(() => decodeAny(CLUSTER, new Uint8Array([0x0a, 0x50, 0x41])), XdsDecodeError);
  // wire type 7 does not exist
  assert.throws(() => decodeAny(CLUSTER, new Uint8Array([0x0f, 1, 2, 3])), XdsDecodeError);
  assert.throws(() => decodeAny(`${T}envoy.nope.v3.Thing`, new Uint8Array()), /Unknown resource type/);
  // a nested Any whose bytes are garbage names its type
  const l = xdsRoot().lookupType("envoy.config.listener.v3.Listener");
  const bad = l.encode(l.fromObject({
    filter_chains: [{
      filters: [{ name: "x", typed_config: { type_url: HCM, value: new Uint8Array([0x12, 0x7f]) } }],
    }],
  })).finish();
  assert.throws(
    () => decodeAny(LISTENER, bad),
    (e) => e instanceof XdsDecodeError && e.message.includes(HCM),
  );
  // Values nested 300 deep (past the codec's limit) and 100,000 deep (past protobufjs's stack)
  const V = xdsRoot().lookupType("google.protobuf.Value");
  assert.throws(() => decodeMessage(V, nestedValues(300)), /nested deeper than 100/);
  assert.throws(() => decodeMessage(V, nestedValues(100_000)), XdsDecodeError);
});

Deno.test("encodeAny names the bad field", () => {
  assert.throws(
    () =>
      encodeAny(CLUSTER, { name: "c", load_assignment: { endpoints: [{ lb_endpoints: [{ nope: 1 }] }] } }),
    (e) =>
      e instanceof XdsEncodeError && e.message.includes("load_assignment.endpoints[0].lb_endpoints[0].nope"),
  );
  assert.throws(
    () => encodeAny(CLUSTER, { connect_timeout: "5 seconds" }),
    /connect_timeout: expected a duration/,
  );
  assert.throws(() => encodeAny(CLUSTER, { type: "NOPE" }), /type: unknown DiscoveryType value "NOPE"/);
  assert.throws(() => encodeAny(`${T}nope.X`, {}), /unknown message type/);
});

/** Value{list_value{values:[...]}} `depth` times around Value{null_value}, built inside out in linear time. */
function nestedValues(depth: number): Uint8Array {
  const heads: number[][] = [];
  let len = 2;
  for (let i = 0; i < depth; i++) {
    const values = [0x0a, ...varint(len)]; // ListValue.values (1)
    len += values.length;
    const list = [0x32, ...varint(len)]; // Value.list_value (6)
    len += list.length;
    heads.push(values, list);
  }
  const out = new Uint8Array(len);
  let at = 0;
  for (let i = heads.length - 1; i >= 0; i--) {
    out.set(heads[i], at);
    at += heads[i].length;
  }
  out.set([0x08, 0x00], at); // Value.null_value
  return out;
}

function varint(n: number): number[] {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return out;
}
