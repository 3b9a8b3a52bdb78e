import assert from "node:assert/strict";
import "../config/zod_setup.ts";
import "../registry/builtin.ts";
import { loadConfigText } from "../config/load.ts";
import { build, type Json } from "../control_plane/builder.ts";
import { defaultsSchema, type Manifest, manifestSchema } from "../control_plane/inputs.ts";
import { bootstrapText, isGenerated, parseRegistryAddress, staticBootstrap } from "./bootstrap.ts";

const defaults = defaultsSchema.parse({
  secrets: [
    { name: "edge-cert", certificate_chain: "/etc/nuncio/edge.crt", private_key: "/etc/nuncio/edge.key" },
    { name: "ca-only", trusted_ca: "/etc/nuncio/ca.crt" },
  ],
});
const manifests = new Map<string, Manifest>([
  ["api", manifestSchema.parse({ service: "api", port: 8081 })],
  ["web", manifestSchema.parse({ service: "web", port: 8080, upstreams: [{ service: "api", retries: 2 }] })],
]);
const registry = { host: "127.0.0.1", port: 8080 };

function keysIn(v: unknown, out = new Set<string>()): Set<string> {
  if (Array.isArray(v)) v.forEach((x) => keysIn(x, out));
  else if (typeof v === "object" && v !== null) {
    for (const [k, x] of Object.entries(v)) {
      out.add(k);
      keysIn(x, out);
    }
  }
  return out;
}

Deno.test("configgen bootstrap: rds inlined, EDS polls the registry, nothing dynamic left, schema-valid", () => {
  const { nodes } = build({ defaults, manifests });
  const doc = staticBootstrap("web", nodes.get("web")!, { defaults, registry, adminPort: 9901 });
  assert.deepEqual(doc.node, { id: "web", cluster: "web" });
  const keys = keysIn(doc);
  for (const k of ["rds", "ads", "sds_config", "api_listener"]) assert.ok(!keys.has(k), k);
  const sr = doc.static_resources as Json;
  const clusters = sr.clusters as Json[];
  assert.deepEqual(clusters.map((c) => c.name), ["local_service", "api", "registry"]);
  const api = clusters[1].eds_cluster_config as Json;
  assert.deepEqual(api, {
    eds_config: {
      api_config_source: {
        api_type: "REST",
        transport_api_version: "V3",
        cluster_names: ["registry"],
        refresh_delay: "1s",
      },
      resource_api_version: "V3",
    },
    service_name: "api",
  });
  assert.equal(clusters[2].type, "STATIC");
  const r = loadConfigText(bootstrapText(doc, "--manifests m", []), "web.yaml");
  assert.ok(r.ok, JSON.stringify(!r.ok && r.errors));
});

Deno.test("configgen bootstrap: a host name makes the registry STRICT_DNS; the defaults' REST delay is kept", () => {
  const d = { ...defaults, eds: { rest_cluster: "discovery", refresh_delay: 5000 } };
  const { nodes } = build({ defaults: d, manifests });
  const doc = staticBootstrap("web", nodes.get("web")!, {
    defaults: d,
    registry: parseRegistryAddress("registry.internal:8080"),
    adminPort: 9902,
  });
  const clusters = (doc.static_resources as Json).clusters as Json[];
  const reg = clusters.find((c) => c.name === "registry")!;
  assert.equal(reg.type, "STRICT_DNS");
  const src = ((clusters[1].eds_cluster_config as Json).eds_config as Json).api_config_source as Json;
  assert.equal(src.refresh_delay, "5s");
  assert.deepEqual(src.cluster_names, ["registry"]);
});

Deno.test("configgen bootstrap: the edge's SDS secret becomes a static secret from the defaults' files", () => {
  const edge = {
    node_cluster: "edge",
    port: 8443,
    address: "0.0.0.0",
    tls_secret: "edge-cert",
    domains: ["*"],
  };
  const { nodes } = build({
    defaults,
    manifests,
    edge: { ...edge, routes: [{ prefix: "/", service: "web" }] },
  });
  const doc = staticBootstrap("edge", nodes.get("edge")!, { defaults, registry, adminPort: 9901 });
  const sr = doc.static_resources as Json;
  assert.deepEqual(sr.secrets, [{
    name: "edge-cert",
    tls_certificate: {
      certificate_chain: { filename: "/etc/nuncio/edge.crt" },
      private_key: { filename: "/etc/nuncio/edge.key" },
    },
  }]);
  const text = JSON.stringify(sr.listeners);
  assert.match(text, /"tls_certificate_sds_secret_configs":\[\{"name":"edge-cert"\}\]/);
  assert.match(text, /"route_config":\{"name":"edge"/);
});

Deno.test("configgen bootstrap: a service named like the registry cluster is refused", () => {
  const m = new Map(manifests);
  m.set("registry", manifestSchema.parse({ service: "registry", port: 9000 }));
  m.set("web", manifestSchema.parse({ service: "web", port: 8080, upstreams: [{ service: "registry" }] }));
  const { nodes } = build({ defaults, manifests: m });
  assert.throws(
    () => staticBootstrap("web", nodes.get("web")!, { defaults, registry, adminPort: 9901 }),
    /Node web: a cluster is named "registry"/,
  );
});

Deno.test("configgen bootstrap: --registry parsing and the generated marker", () => {
  assert.deepEqual(parseRegistryAddress("10.0.0.1:8080"), { host: "10.0.0.1", port: 8080 });
  assert.deepEqual(parseRegistryAddress("[::1]:80"), { host: "::1", port: 80 });
  assert.deepEqual(parseRegistryAddress("reg.local:1"), { host: "reg.local", port: 1 });
  for (const bad of ["10.0.0.1", "10.0.0.1:0", "h:70000", "[x]:80", "::1:80", ":80"]) {
    assert.throws(() => parseRegistryAddress(bad), /--registry/, bad);
  }
  const text = bootstrapText({ node: { id: "a" } }, "--manifests m", ["note"]);
  assert.equal(text, "# Generated by nuncio configgen from --manifests m\n# note\nnode:\n  id: a\n");
  assert.ok(isGenerated(text));
  assert.ok(!isGenerated("node: {}\n"));
});
