/**
 * Configs written for Envoy load unchanged (as far as the features exist). Needs the real extensions,
 * so it imports the builtin registry.
 */
import assert from "node:assert/strict";
import "../registry/builtin.ts";
import { type ConfigError, formatConfigError } from "./errors.ts";
import { loadConfigFile, loadConfigText, type LoadResult } from "./load.ts";

const FIXTURES = new URL("../../tests/fixtures/config/", import.meta.url);
const fixture = (name: string) => new URL(name, FIXTURES).pathname;
const HCM = "envoy.filters.network.http_connection_manager";

function okOf(r: LoadResult) {
  assert.ok(r.ok, r.ok ? "" : r.errors.map(formatConfigError).join("\n"));
  return r.bootstrap;
}

function errorsOf(r: LoadResult): ConfigError[] {
  assert.equal(r.ok, false, "expected the config to be rejected");
  return (r as { errors: ConfigError[] }).errors;
}

Deno.test("Envoy front proxy (HCM + router, STRICT_DNS clusters) loads", async () => {
  const b = okOf(await loadConfigFile(fixture("envoy_front_proxy.yaml")));
  const l = b.static_resources.listeners[0];
  assert.equal(l.name, "0.0.0.0_8080");
  assert.deepEqual(l.filter_chains[0].filters.map((f) => f.ext.name), [HCM]);
  assert.deepEqual(b.static_resources.clusters.map((c) => [c.name, c.type, c.lb_policy, c.connect_timeout]), [
    ["service1", "STRICT_DNS", "ROUND_ROBIN", 250],
    ["service2", "STRICT_DNS", "LEAST_REQUEST", 250],
  ]);
  assert.equal(b.admin?.address?.socket_address.port_value, 8081);
});

Deno.test("Envoy front proxy in JSON loads", async () => {
  const b = okOf(await loadConfigFile(fixture("envoy_front_proxy.json")));
  assert.equal(b.static_resources.listeners[0].filter_chains[0].filters[0].ext.name, HCM);
});

Deno.test("Envoy tcp_proxy example loads", async () => {
  const b = okOf(await loadConfigFile(fixture("envoy_tcp_proxy.yaml")));
  const f = b.static_resources.listeners[0].filter_chains[0].filters[0];
  assert.equal(f.ext.name, "envoy.filters.network.tcp_proxy");
  assert.equal(b.static_resources.clusters[0].connect_timeout, 30_000);
});

Deno.test("an error deep inside the HCM typed_config is positioned", async () => {
  const file = fixture("envoy_front_proxy.yaml");
  const text = (await Deno.readTextFile(file)).replace("timeout: 5s", "timeout: 5 seconds");
  const errors = errorsOf(loadConfigText(text, "front.yaml"));
  assert.equal(errors.length, 1, errors.map(formatConfigError).join("\n"));
  const e = errors[0];
  assert.equal(
    e.path,
    "static_resources.listeners[0].filter_chains[0].filters[0].typed_config.route_config.virtual_hosts[0].routes[0].route.timeout",
  );
  assert.deepEqual([e.line, e.column], [27, 38]);
});

Deno.test("Envoy fields nuncio lacks are named, not ignored", async () => {
  const base = await Deno.readTextFile(fixture("envoy_front_proxy.yaml"));
  const line = base.split("\n").length; // the first appended line (the file ends with a newline)
  const text = base +
    ["overload_manager:", "  refresh_interval: 0.25s"].join("\n");
  const errors = errorsOf(loadConfigText(text, "front.yaml"));
  assert.deepEqual(errors.map(formatConfigError), [
    `front.yaml:${line}:1: overload_manager: Field not supported by nuncio`,
  ]);
});

Deno.test("Envoy getting-started access log (stdout logger on the HCM) loads", async () => {
  const base = await Deno.readTextFile(fixture("envoy_front_proxy.yaml"));
  const at = /^( *)stat_prefix: ingress_http\n/m.exec(base);
  assert.ok(at);
  const pad = at[1];
  const text = base.replace(
    at[0],
    [
      `${pad}stat_prefix: ingress_http`,
      `${pad}access_log:`,
      `${pad}  - name: envoy.access_loggers.stdout`,
      `${pad}    typed_config:`,
      `${pad}      "@type": type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog`,
      "",
    ].join("\n"),
  );
  okOf(loadConfigText(text, "front.yaml"));
});

Deno.test("Envoy YAML idioms: empty message fields, lower-case enums, quoted integers", () => {
  const text = `
static_resources:
  listeners:
  - name: l
    address: { socket_address: { address: 0.0.0.0, port_value: "8080", protocol: tcp } }
    traffic_direction: outbound
    filter_chains:
    - filter_chain_match:
      filters:
      - name: ${HCM}
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          codec_type: auto
          stat_prefix: ingress_http
          common_http_protocol_options:
          http2_protocol_options:
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              require_tls: none
              routes:
              - match: { prefix: "/" }
                route: { cluster: web, priority: high }
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
  clusters:
  - name: web
    type: logical_dns
    lb_policy: round_robin
    dns_lookup_family: v4_only
    per_connection_buffer_limit_bytes: "32768"
    http2_protocol_options:
    load_assignment:
      cluster_name: web
      endpoints:
      - lb_endpoints:
        - endpoint: { address: { socket_address: { address: localhost, port_value: "9000" } } }
    outlier_detection:
      consecutive_5xx: "7"
`;
  const b = okOf(loadConfigText(text, "idioms.yaml"));
  const l = b.static_resources.listeners[0];
  assert.equal(l.address.socket_address.port_value, 8080);
  assert.equal(l.address.socket_address.protocol, "TCP");
  assert.equal(l.traffic_direction, "OUTBOUND");
  const hcm = l.filter_chains[0].filters[0].config as { codec_type: string };
  assert.equal(hcm.codec_type, "AUTO");
  const c = b.static_resources.clusters[0];
  assert.deepEqual([c.type, c.lb_policy, c.dns_lookup_family], ["LOGICAL_DNS", "ROUND_ROBIN", "V4_ONLY"]);
  assert.equal(c.per_connection_buffer_limit_bytes, 32768);
  assert.equal(c.outlier_detection?.consecutive_5xx, 7);
});

Deno.test("a not-implemented enum value is named whatever its case", () => {
  const base = `
static_resources:
  clusters:
  - name: web
    lb_policy: load_balancing_policy_config
    connect_timeout: 1s
`;
  const errors = errorsOf(loadConfigText(base, "lbp.yaml"));
  assert.deepEqual(errors.map(formatConfigError), [
    "lbp.yaml:5:16: static_resources.clusters[0].lb_policy: Field not supported by nuncio: lb_policy LOAD_BALANCING_POLICY_CONFIG is not supported",
  ]);
});
