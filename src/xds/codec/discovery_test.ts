import assert from "node:assert/strict";
import { compileProto, PY } from "../../../tests/python_grpc.ts";
import { generateDescriptors, generateNote } from "../../../tools/gen_xds_descriptors.ts";
import {
  decodeAny,
  decodeDeltaDiscoveryResponse,
  decodeDiscoveryRequest,
  decodeDiscoveryResponse,
  encodeAny,
  encodeDeltaDiscoveryRequest,
  encodeDiscoveryRequest,
  encodeDiscoveryResponse,
  XdsDecodeError,
  xdsRoot,
} from "./mod.ts";
import type { DiscoveryRequest } from "../types.ts";

const CDS = "type.googleapis.com/envoy.config.cluster.v3.Cluster";

const NACK: DiscoveryRequest = {
  version_info: "v7",
  node: {
    id: "sidecar~10.0.0.1~app-1~default",
    cluster: "app",
    locality: { region: "us-east-1", zone: "us-east-1a" },
    metadata: { az: "us-east-1a", tags: ["a", 2, true, null], nested: { deep: 1.5 } },
    user_agent_version: "0.1.0",
  },
  resource_names: ["a", "b"],
  type_url: CDS,
  response_nonce: "n-42",
  error_detail: { code: 3, message: "clusters[0].connect_timeout: Invalid duration" },
};

/** The DiscoveryRequest subset with Envoy's field numbers, for a decoder that is not protobufjs. */
const PROTO = `syntax = "proto3";
package t;
import "google/protobuf/struct.proto";
message Locality { string region = 1; string zone = 2; string sub_zone = 3; }
message Node {
  string id = 1; string cluster = 2; google.protobuf.Struct metadata = 3; Locality locality = 4;
  string user_agent_name = 6; oneof user_agent_version_type { string user_agent_version = 7; }
}
message Status { int32 code = 1; string message = 2; }
message DiscoveryRequest {
  string version_info = 1; Node node = 2; repeated string resource_names = 3; string type_url = 4;
  string response_nonce = 5; Status error_detail = 6;
}
`;

Deno.test("a DiscoveryRequest nuncio encodes reads the same in python's protobuf", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/dr.proto`, PROTO);
    await compileProto(dir, dir, `${dir}/dr.proto`);
    await Deno.writeFile(`${dir}/req.bin`, encodeDiscoveryRequest(NACK));
    const script = [
      "import sys, json",
      `sys.path.insert(0, ${JSON.stringify(dir)})`,
      "import dr_pb2",
      "from google.protobuf import json_format",
      "m = dr_pb2.DiscoveryRequest()",
      `m.ParseFromString(open(${JSON.stringify(`${dir}/req.bin`)}, "rb").read())`,
      "print(json.dumps(json_format.MessageToDict(m, preserving_proto_field_name=True)))",
    ].join("\n");
    const r = await new Deno.Command(PY, { args: ["-c", script], stdout: "piped", stderr: "piped" }).output();
    assert.ok(r.success, new TextDecoder().decode(r.stderr));
    const seen = JSON.parse(new TextDecoder().decode(r.stdout));
    assert.deepEqual(seen, { ...NACK, node: { ...NACK.node, user_agent_name: "nuncio" } });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("DiscoveryRequest and DiscoveryResponse round trip; resources stay bytes until decodeAny", () => {
  assert.deepEqual(decodeDiscoveryRequest(encodeDiscoveryRequest(NACK)), {
    ...NACK,
    node: { ...NACK.node, user_agent_name: "nuncio" },
  });
  // the first request of a stream: no version, no nonce
  assert.deepEqual(decodeDiscoveryRequest(encodeDiscoveryRequest({ type_url: CDS })), { type_url: CDS });
  const value = encodeAny(CDS, { name: "c1", connect_timeout: "1s" });
  const bytes = encodeDiscoveryResponse({
    version_info: "1",
    nonce: "n1",
    type_url: CDS,
    resources: [{ type_url: CDS, value }],
  });
  const res = decodeDiscoveryResponse(bytes);
  assert.equal(res.version_info, "1");
  assert.equal(res.nonce, "n1");
  assert.equal(res.type_url, CDS);
  assert.equal(res.resources.length, 1);
  assert.deepEqual(decodeAny(res.resources[0].type_url, res.resources[0].value), {
    "@type": CDS,
    name: "c1",
    connect_timeout: "1s",
  });
  assert.throws(() => decodeDiscoveryResponse(new Uint8Array([0x12, 0x05, 0x0a])), XdsDecodeError);
});

Deno.test("delta requests encode, delta responses decode with each resource's Any left as bytes", () => {
  const req = {
    type_url: CDS,
    resource_names_subscribe: ["a"],
    resource_names_unsubscribe: ["b"],
    initial_resource_versions: { a: "3" },
    response_nonce: "x",
    node: { id: "n" },
  };
  const t = xdsRoot().lookupType("envoy.service.discovery.v3.DeltaDiscoveryRequest");
  const back = t.toObject(t.decode(encodeDeltaDiscoveryRequest(req)));
  assert.deepEqual(JSON.parse(JSON.stringify(back)), {
    ...req,
    node: { id: "n", user_agent_name: "nuncio" },
  });

  const dr = xdsRoot().lookupType("envoy.service.discovery.v3.DeltaDiscoveryResponse");
  const value = encodeAny(CDS, { name: "a" });
  const bytes = dr.encode(dr.fromObject({
    system_version_info: "s1",
    type_url: CDS,
    nonce: "d1",
    removed_resources: ["b"],
    resources: [{ name: "a", version: "4", resource: { type_url: CDS, value }, ttl: { seconds: 30 } }],
  })).finish();
  const res = decodeDeltaDiscoveryResponse(bytes);
  assert.deepEqual({ ...res, resources: res.resources.map((r) => ({ ...r, resource: undefined })) }, {
    system_version_info: "s1",
    type_url: CDS,
    nonce: "d1",
    removed_resources: ["b"],
    resources: [{ name: "a", version: "4", ttl: "30s", resource: undefined }],
  });
  const r0 = res.resources[0].resource!;
  assert.deepEqual(decodeAny(r0.type_url, r0.value), { "@type": CDS, name: "a" });
});

Deno.test("a CDS response of 1,000 clusters decodes into 1,000 resources", () => {
  const resources = Array.from({ length: 1000 }, (_, i) => ({
    type_url: CDS,
    value: encodeAny(CDS, {
      name: `svc-${i}`,
      type: "EDS",
      connect_timeout: "0.25s",
      eds_cluster_config: { eds_config: { ads: {}, resource_api_version: "V3" } },
      circuit_breakers: { thresholds: [{ max_connections: 1000, max_pending_requests: 1000 }] },
    }),
  }));
  const res = decodeDiscoveryResponse(
    encodeDiscoveryResponse({ version_info: "1", nonce: "1", type_url: CDS, resources }),
  );
  const decoded = res.resources.map((r) => decodeAny(r.type_url, r.value));
  assert.equal(decoded.length, 1000);
  assert.equal(decoded[999].name, "svc-999");
  assert.deepEqual(decoded[0].eds_cluster_config, { eds_config: { ads: {}, resource_api_version: "V3" } });
});

Deno.test("the committed descriptors.ts and .md are what tools/gen_xds_descriptors.ts generates", () => {
  const committed = Deno.readTextFileSync(new URL("./descriptors.ts", import.meta.url));
  const note = Deno.readTextFileSync(new URL("./descriptors.md", import.meta.url));
  assert.ok(
    committed === generateDescriptors() && note === generateNote(),
    "src/xds/codec/descriptors.ts is stale: run deno run -A tools/gen_xds_descriptors.ts",
  );
});
