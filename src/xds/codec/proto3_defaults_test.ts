/**
 * proto3 leaves a scalar field holding its default (0, "", false, the first enum value) off the wire, so a config
 * from a control plane arrives without it; Envoy reads it as the default, and so must nuncio's schemas. A field
 * whose default Envoy's validation rejects (min_len: 1, gt: 0, ...) stays required, reported as missing.
 */
import assert from "node:assert/strict";
import "../../registry/builtin.ts";
import { httpFaultSchema } from "../../extensions/filters/http/fault/config.ts";
import { routeConfigurationSchema } from "../../http/routing/config.ts";
import { clusterSchema } from "../../upstream/config.ts";
import { loadConfigText } from "../../config/load.ts";
import { formatConfigError } from "../../config/errors.ts";
import { decodeAny, encodeAny } from "./mod.ts";

const FAULT = "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault";
const ROUTES = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration";
const CLUSTER = "type.googleapis.com/envoy.config.cluster.v3.Cluster";

/** `json` as a control plane delivers it: encoded as Envoy's protobuf and decoded back, without "@type". */
function overTheWire(url: string, json: Record<string, unknown>): Record<string, unknown> {
  const { "@type": _t, ...fields } = decodeAny(url, encodeAny(url, json));
  return fields;
}

Deno.test("a FractionalPercent with numerator 0 arrives empty and parses as 0/100 (the fault example)", () => {
  const yaml = {
    abort: { http_status: 503, percentage: { numerator: 0, denominator: "HUNDRED" } },
    delay: { fixed_delay: "3s", percentage: { numerator: 0, denominator: "HUNDRED" } },
  };
  const wire = overTheWire(FAULT, yaml);
  assert.deepEqual(wire, {
    abort: { http_status: 503, percentage: {} },
    delay: { fixed_delay: "3s", percentage: {} },
  });
  const fromWire = httpFaultSchema.parse(wire);
  assert.deepEqual(fromWire.abort?.percentage, { numerator: 0, denominator: "HUNDRED" });
  assert.deepEqual(fromWire.delay?.percentage, { numerator: 0, denominator: "HUNDRED" });
  assert.deepEqual(fromWire, httpFaultSchema.parse(yaml));
});

Deno.test("Percent.value, RuntimeDouble.default_value 0 arrive absent and parse as 0", () => {
  const yaml = {
    name: "c",
    lb_policy: "LEAST_REQUEST",
    least_request_lb_config: { active_request_bias: { default_value: 0 } },
    common_lb_config: { healthy_panic_threshold: { value: 0 } },
  };
  const wire = overTheWire(CLUSTER, yaml);
  assert.deepEqual(wire.common_lb_config, { healthy_panic_threshold: {} });
  assert.deepEqual(wire.least_request_lb_config, { active_request_bias: {} });
  const c = clusterSchema.parse(wire);
  assert.equal(c.common_lb_config?.healthy_panic_threshold?.value, 0);
  assert.equal(c.least_request_lb_config?.active_request_bias?.default_value, 0);
});

Deno.test("an empty regex_rewrite substitution arrives absent; an empty oneof prefix is on the wire", () => {
  const yaml = {
    name: "r",
    virtual_hosts: [{
      name: "vh",
      domains: ["*"],
      routes: [{
        match: { prefix: "" },
        route: { cluster: "c", regex_rewrite: { pattern: { regex: "^/api" }, substitution: "" } },
      }],
    }],
  };
  const wire = overTheWire(ROUTES, yaml);
  const route = (wire.virtual_hosts as { routes: Record<string, Record<string, unknown>>[] }[])[0].routes[0];
  // a oneof member is serialized whenever it is set, even to its default: not a proto3 gap
  assert.deepEqual(route.match, { prefix: "" });
  assert.deepEqual(route.route.regex_rewrite, { pattern: { regex: "^/api" } });
  const parsed = routeConfigurationSchema.parse(wire);
  const r = parsed.virtual_hosts[0].routes[0];
  assert.equal(r.match.prefix, "");
  assert.equal(r.route?.regex_rewrite?.substitution, "");
});

Deno.test("a scalar whose default Envoy's validation rejects is still reported missing at its key", () => {
  const text = [
    "static_resources:",
    "  clusters:",
    "    - name: c",
    "      health_checks:",
    "        - timeout: 1s",
    "          interval: 1s",
    "          unhealthy_threshold: 1",
    "          healthy_threshold: 1",
    "          http_health_check: {}", // path: min_len 1
    "  listeners:",
    "    - address: { socket_address: { address: 0.0.0.0, port_value: 1 } }",
    "      filter_chains:",
    "        - filters:",
    "            - name: envoy.filters.network.http_connection_manager",
    "              typed_config:",
    '                "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
    "                stat_prefix: s",
    "                http_filters: [{ name: envoy.filters.http.router }]",
    "                route_config:",
    "                  virtual_hosts:",
    "                    - name: vh",
    "                      domains: ['*']",
    "                      routes:",
    "                        - match: { prefix: / }",
    "                          direct_response: {}", // status: gte 200
    "",
  ].join("\n");
  const r = loadConfigText(text, "required.yaml");
  assert.equal(r.ok, false);
  const vh =
    "static_resources.listeners[0].filter_chains[0].filters[0].typed_config.route_config.virtual_hosts[0]";
  assert.deepEqual(
    (r as { errors: Parameters<typeof formatConfigError>[0][] }).errors.map(formatConfigError),
    [
      "required.yaml:9:30: static_resources.clusters[0].health_checks[0].http_health_check.path: Missing required field",
      `required.yaml:25:44: ${vh}.routes[0].direct_response.status: Missing required field`,
    ],
  );
});
