import assert from "node:assert/strict";
import { apiConfigSourceSchema, configSourceSchema, dynamicResourcesSchema } from "./config_source.ts";

const issues = (r: { success: boolean; error?: { issues: { path: PropertyKey[]; message: string }[] } }) =>
  r.error?.issues.map((i) => `${i.path.join(".")}: ${i.message}`);

Deno.test("ApiConfigSource: enums case-insensitive, REST and gRPC defaults, only V3", () => {
  const rest = apiConfigSourceSchema.parse({
    api_type: "rest",
    transport_api_version: "v3",
    cluster_names: ["xds"],
  });
  assert.equal(rest.api_type, "REST");
  assert.equal(rest.refresh_delay, 1000);
  assert.equal(rest.request_timeout, 1000);
  assert.equal(rest.set_node_on_first_message_only, false);
  const grpc = apiConfigSourceSchema.parse({
    api_type: "GRPC",
    grpc_services: [{ envoy_grpc: { cluster_name: "xds" } }],
    rate_limit_settings: {},
  });
  assert.deepEqual(grpc.rate_limit_settings, { max_tokens: 100, fill_rate: 10 });
  assert.deepEqual(
    issues(
      apiConfigSourceSchema.safeParse({
        api_type: "REST",
        transport_api_version: "V2",
        cluster_names: ["x"],
      }),
    ),
    ["transport_api_version: Only V3 is supported (Envoy removed the v2 xDS API)"],
  );
  assert.deepEqual(issues(apiConfigSourceSchema.safeParse({ api_type: "REST", cluster_names: [] })), [
    "cluster_names: REST needs exactly one cluster name",
  ]);
  assert.deepEqual(issues(apiConfigSourceSchema.safeParse({ api_type: "GRPC", cluster_names: ["x"] })), [
    "cluster_names: GRPC takes grpc_services, not cluster_names",
    "grpc_services: GRPC needs exactly one grpc_services entry",
  ]);
  assert.deepEqual(
    issues(apiConfigSourceSchema.safeParse({ api_type: "GRPC", grpc_services: [{ google_grpc: {} }] })),
    [
      "grpc_services.0.envoy_grpc: Invalid input: expected object, received undefined",
      "grpc_services.0.google_grpc: Field not supported by nuncio",
    ],
  );
});

Deno.test("ConfigSource: exactly one source, initial_fetch_timeout 15 s, path_config_source and deprecated path", () => {
  assert.equal(configSourceSchema.parse({ ads: {} }).initial_fetch_timeout, 15_000);
  assert.equal(
    configSourceSchema.parse({ path: "/x/lds.yaml", initial_fetch_timeout: "0s" }).initial_fetch_timeout,
    0,
  );
  assert.deepEqual(
    configSourceSchema.parse({ path_config_source: { path: "a.yaml", watched_directory: { path: "/x" } } })
      .path_config_source,
    { path: "a.yaml", watched_directory: { path: "/x" } },
  );
  assert.deepEqual(issues(configSourceSchema.safeParse({})), [
    ": Exactly one of ads, api_config_source, path_config_source, path must be set",
  ]);
  assert.deepEqual(issues(configSourceSchema.safeParse({ ads: {}, path: "x" })), [
    ": Exactly one of ads, api_config_source, path_config_source, path must be set",
  ]);
  assert.deepEqual(issues(configSourceSchema.safeParse({ ads: {}, resource_api_version: "V2" })), [
    "resource_api_version: Only V3 is supported (Envoy removed the v2 xDS API)",
  ]);
});

Deno.test("dynamic_resources: ads needs ads_config, ads_config is gRPC, locators not supported", () => {
  assert.deepEqual(issues(dynamicResourcesSchema.safeParse({ lds_config: { ads: {} } })), [
    "lds_config.ads: ads needs dynamic_resources.ads_config",
  ]);
  assert.deepEqual(
    issues(dynamicResourcesSchema.safeParse({
      ads_config: { api_type: "REST", cluster_names: ["x"] },
      cds_resources_locator: "xdstp://x",
    })),
    ["cds_resources_locator: Field not supported by nuncio"],
  );
  assert.deepEqual(
    issues(dynamicResourcesSchema.safeParse({ ads_config: { api_type: "REST", cluster_names: ["x"] } })),
    ["ads_config.api_type: ads_config must be GRPC or DELTA_GRPC (ADS is a gRPC stream)"],
  );
});
