import assert from "node:assert/strict";
import "../registry/builtin.ts";
import { formatConfigError } from "./errors.ts";
import { loadConfigTextChecked } from "./load.ts";
import { preServeChecks } from "../server/pre_serve_checks.ts";

/** A bootstrap with a static cluster "cp", an EDS cluster "eds" and `extra` YAML at the top level. */
function bootstrap(extra: string[]): string {
  return [
    "static_resources:",
    "  clusters:",
    "  - name: cp",
    "    type: STATIC",
    "    load_assignment:",
    "      cluster_name: cp",
    "      endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: 18000 } } } }] }]",
    "  - name: eds",
    "    type: EDS",
    "    eds_cluster_config: { eds_config: { path: /tmp/eds.yaml } }",
    ...extra,
  ].join("\n");
}

async function errors(text: string): Promise<string[]> {
  const r = await loadConfigTextChecked(text, "c.yaml", { crossCheck: preServeChecks });
  return r.ok ? [] : r.errors.map(formatConfigError);
}

const grpc = (cluster: string, apiType = "GRPC") =>
  `{ api_type: ${apiType}, transport_api_version: V3, grpc_services: [{ envoy_grpc: { cluster_name: ${cluster} } }] }`;

Deno.test("hds_config and cluster_manager.load_stats_config: gRPC sources on a static cluster are accepted", async () => {
  const text = bootstrap([
    `hds_config: ${grpc("cp")}`,
    "cluster_manager:",
    `  load_stats_config: ${grpc("cp")}`,
  ]);
  const r = await loadConfigTextChecked(text, "c.yaml", { crossCheck: preServeChecks });
  assert.ok(r.ok, r.ok ? "" : r.errors.map(formatConfigError).join("\n"));
  assert.equal(r.bootstrap.hds_config?.api_type, "GRPC");
  assert.equal(r.bootstrap.hds_config?.grpc_services[0].envoy_grpc.cluster_name, "cp");
  assert.equal(
    r.bootstrap.cluster_manager?.load_stats_config?.grpc_services[0].envoy_grpc.cluster_name,
    "cp",
  );
});

Deno.test("hds_config: REST, DELTA_GRPC and google_grpc are errors at their field", async () => {
  const rest = await errors(
    bootstrap(["hds_config: { api_type: REST, cluster_names: [cp] }"]),
  );
  assert.equal(rest.length, 1, rest.join("\n"));
  assert.match(rest[0], /^c\.yaml:\d+:\d+: hds_config\.api_type: api_type must be GRPC .*not REST/);
  const delta = await errors(bootstrap([`hds_config: ${grpc("cp", "DELTA_GRPC")}`]));
  assert.equal(delta.length, 1, delta.join("\n"));
  assert.match(delta[0], /hds_config\.api_type: api_type must be GRPC .*not DELTA_GRPC/);
  const google = await errors(
    bootstrap(["hds_config: { api_type: GRPC, grpc_services: [{ google_grpc: { target_uri: x } }] }"]),
  );
  assert.ok(
    google.some((e) => /hds_config\.grpc_services\[0\]\.google_grpc: Field not supported/.test(e)),
    google.join("\n"),
  );
});

Deno.test("load_stats_config: REST is an error at cluster_manager.load_stats_config.api_type", async () => {
  const e = await errors(
    bootstrap(["cluster_manager:", "  load_stats_config: { api_type: REST, cluster_names: [cp] }"]),
  );
  assert.equal(e.length, 1, e.join("\n"));
  assert.match(e[0], /cluster_manager\.load_stats_config\.api_type: api_type must be GRPC/);
});

Deno.test("hds_config and load_stats_config must name a static, non-EDS cluster", async () => {
  const e = await errors(bootstrap([
    `hds_config: ${grpc("nowhere")}`,
    "cluster_manager:",
    `  load_stats_config: ${grpc("eds")}`,
  ]));
  assert.equal(e.length, 2, e.join("\n"));
  assert.match(
    e[0],
    /hds_config\.grpc_services\[0\]\.envoy_grpc\.cluster_name: .*"nowhere" is not in static_resources\.clusters/,
  );
  assert.match(
    e[1],
    /cluster_manager\.load_stats_config\.grpc_services\[0\]\.envoy_grpc\.cluster_name: .*"eds" is an EDS cluster/,
  );
});
