/**
 * A corpus of real Envoy v3 bootstraps (tests/envoy_examples/, each naming its source on its first line): those
 * whose features nuncio has must load (schemas and cluster references); every other one must fail with exactly
 * the "not supported" errors listed here, so the README's list of what is missing stays true.
 */
import assert from "node:assert/strict";
import "../src/registry/builtin.ts";
import { loadConfigFile } from "../src/config/load.ts";
import { formatConfigError } from "../src/config/errors.ts";
import { checkClusterReferences } from "../src/server/cross_check.ts";

const DIR = new URL("./envoy_examples/", import.meta.url);
const LOADS = "loads";
/** The typed_config of the first listener's first network filter (mostly the HTTP connection manager). */
const FILTER0 = "static_resources.listeners[0].filter_chains[0].filters[0].typed_config";

/** Each file: LOADS, or every distinct error as `field.path: message`. */
const EXPECTED: Record<string, typeof LOADS | string[]> = {
  "envoy_configs_envoy_demo.yaml": [
    "static_resources.listeners[1].filter_chains[0].filters[0].typed_config.local_reply_config: Field not supported by nuncio",
  ],
  "envoy_configs_terminate_http1_connect.yaml": [
    `${FILTER0}.route_config.virtual_hosts[0].routes[0].match.connect_matcher: Field not supported by nuncio`,
    `${FILTER0}.route_config.virtual_hosts[0].routes[0].route.upgrade_configs: Field not supported by nuncio`,
  ],
  "examples_brotli.yaml": LOADS,
  "examples_cors_backend.yaml": LOADS,
  "examples_cors_frontend.yaml": LOADS,
  "examples_csrf_samesite.yaml": [
    `${FILTER0}.route_config.virtual_hosts[0].typed_per_filter_config["envoy.filters.http.csrf"].@type: Unknown or unsupported per-route HTTP filter config "type.googleapis.com/envoy.extensions.filters.http.csrf.v3.CsrfPolicy"`,
    `${FILTER0}.route_config.virtual_hosts[0].routes[0].typed_per_filter_config["envoy.filters.http.csrf"].@type: Unknown or unsupported per-route HTTP filter config "type.googleapis.com/envoy.extensions.filters.http.csrf.v3.CsrfPolicy"`,
    `${FILTER0}.route_config.virtual_hosts[0].routes[1].typed_per_filter_config["envoy.filters.http.csrf"].@type: Unknown or unsupported per-route HTTP filter config "type.googleapis.com/envoy.extensions.filters.http.csrf.v3.CsrfPolicy"`,
    `${FILTER0}.route_config.virtual_hosts[0].routes[2].typed_per_filter_config["envoy.filters.http.csrf"].@type: Unknown or unsupported per-route HTTP filter config "type.googleapis.com/envoy.extensions.filters.http.csrf.v3.CsrfPolicy"`,
    `${FILTER0}.http_filters[1].typed_config.@type: Unknown or unsupported http filter type "type.googleapis.com/envoy.extensions.filters.http.csrf.v3.CsrfPolicy"`,
  ],
  "examples_double_proxy_envoy_backend.yaml": LOADS,
  "examples_double_proxy_envoy_frontend.yaml": LOADS,
  "examples_dynamic_config_cp.yaml": LOADS,
  "examples_dynamic_config_fs.yaml": LOADS,
  "examples_ext_authz_http_service.yaml": LOADS,
  "examples_fault_injection.yaml": LOADS,
  "examples_front_proxy_service_envoy.yaml": LOADS,
  "examples_front_proxy.yaml": LOADS,
  "examples_grpc_bridge_client_envoy_proxy.yaml": LOADS,
  "examples_grpc_bridge_server_envoy_proxy.yaml": LOADS,
  "examples_gzip.yaml": LOADS,
  "examples_jaeger_tracing.yaml": LOADS,
  "examples_load_reporting_service.yaml": LOADS,
  "examples_local_ratelimit.yaml": LOADS,
  "examples_locality_load_balancing.yaml": [
    "static_resources.clusters[0].load_assignment.endpoints[0].lb_endpoints[0].endpoint.health_check_config: Field not supported by nuncio",
    "static_resources.clusters[0].load_assignment.endpoints[1].lb_endpoints[0].endpoint.health_check_config: Field not supported by nuncio",
    "static_resources.clusters[0].load_assignment.endpoints[2].lb_endpoints[0].endpoint.health_check_config: Field not supported by nuncio",
    "static_resources.clusters[0].load_assignment.endpoints[3].lb_endpoints[0].endpoint.health_check_config: Field not supported by nuncio",
  ],
  "examples_lua.yaml": [
    `${FILTER0}.route_config.virtual_hosts[0].routes[0].typed_per_filter_config.lua_filter_with_custom_name_1.@type: Unknown or unsupported per-route HTTP filter config "type.googleapis.com/envoy.extensions.filters.http.lua.v3.LuaPerRoute"`,
    `${FILTER0}.http_filters[0].typed_config.@type: Unknown or unsupported http filter type "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua"`,
    `${FILTER0}.http_filters[1].typed_config.@type: Unknown or unsupported http filter type "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua"`,
  ],
  "examples_mysql.yaml": [
    `${FILTER0}.@type: Unknown or unsupported network filter type "type.googleapis.com/envoy.extensions.filters.network.mysql_proxy.v3.MySQLProxy"`,
  ],
  "examples_opentelemetry_envoy_front_proxy.yaml": LOADS,
  "examples_postgres.yaml": [
    `${FILTER0}.@type: Unknown or unsupported network filter type "type.googleapis.com/envoy.extensions.filters.network.postgres_proxy.v3alpha.PostgresProxy"`,
  ],
  "examples_redis.yaml": LOADS,
  "examples_route_mirror.yaml": LOADS,
  "examples_tls_envoy_http_https.yaml": LOADS,
  "examples_tls_envoy_https_http.yaml": LOADS,
  "examples_tls_envoy_https_https.yaml": LOADS,
  "examples_tls_envoy_https_passthrough.yaml": LOADS,
  "examples_tls_inspector.yaml": LOADS,
  "examples_tls_sni.yaml": LOADS,
  "examples_udp.yaml": [
    "static_resources.listeners[0].address.socket_address.protocol: Field not supported by nuncio: only TCP (nuncio has no UDP listeners or upstreams)",
    'static_resources.listeners[0].listener_filters[0].typed_config.@type: Unknown or unsupported listener filter "type.googleapis.com/envoy.extensions.filters.udp.udp_proxy.v3.UdpProxyConfig"',
  ],
  "examples_websocket_envoy_ws_route.yaml": [
    `${FILTER0}.route_config.virtual_hosts[0].routes[0].route.upgrade_configs: Field not supported by nuncio`,
  ],
  "examples_websocket_envoy_ws.yaml": LOADS,
  "examples_websocket_envoy_wss.yaml": LOADS,
  "examples_zipkin_envoy_front_proxy.yaml": LOADS,
  "grpc_web_echo.yaml": LOADS,
};

Deno.test("every Envoy example bootstrap loads or names exactly what nuncio lacks", async () => {
  const files = [...Deno.readDirSync(DIR)].map((e) => e.name).filter((n) => /\.ya?ml$/.test(n)).sort();
  assert.deepEqual(
    files,
    Object.keys(EXPECTED).sort(),
    "every corpus file has an expectation, and only those",
  );
  for (const name of files) {
    const path = new URL(name, DIR).pathname;
    const first = (await Deno.readTextFile(path)).split("\n", 1)[0];
    assert.match(first, /^# Source: [\w.-]+\/[\w.-]+, \S+/, `${name} names its source on its first line`);
    const r = await loadConfigFile(path, { crossCheck: checkClusterReferences });
    const want = EXPECTED[name];
    if (want === LOADS) {
      assert.ok(r.ok, `${name} should load:\n${r.ok ? "" : r.errors.map(formatConfigError).join("\n")}`);
      continue;
    }
    assert.equal(r.ok, false, `${name} loaded, but is expected to fail with:\n${want.join("\n")}`);
    if (r.ok) continue;
    const got = [...new Set(r.errors.map((e) => `${e.path}: ${e.message}`))];
    assert.deepEqual(got, want, `${name}:\n${r.errors.map(formatConfigError).join("\n")}`);
  }
});
