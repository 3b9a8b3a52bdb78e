import assert from "node:assert/strict";
import { dropNullFields } from "./normalize.ts";

Deno.test("dropNullFields drops null fields at any depth, in arrays too", () => {
  const doc = {
    admin: null,
    static_resources: {
      listeners: [{ name: "l", filter_chains: [{ filter_chain_match: null, filters: [] }] }],
      clusters: [{ name: "c", http2_protocol_options: null, common_http_protocol_options: null }],
    },
  };
  const before = structuredClone(doc);
  assert.deepEqual(dropNullFields(doc), {
    static_resources: {
      listeners: [{ name: "l", filter_chains: [{ filters: [] }] }],
      clusters: [{ name: "c" }],
    },
  });
  assert.deepEqual(doc, before, "the input is not modified");
});

Deno.test("dropNullFields keeps nulls inside Struct payloads", () => {
  const doc = {
    node: { id: "n", metadata: { a: null, b: { c: null } }, locality: null },
    static_resources: {
      clusters: [{
        name: "c",
        metadata: { filter_metadata: { "envoy.lb": { canary: null } } },
        typed_extension_protocol_options: {
          x: { "@type": "type.googleapis.com/google.protobuf.Struct", k: null },
          y: { "@type": "type.googleapis.com/xds.type.v3.TypedStruct", type_url: null, value: { k: null } },
        },
      }],
    },
    layered_runtime: { layers: [{ name: "s", static_layer: { flag: null } }] },
    access_log: [{ log_format: { json_format: { upstream: null } }, filter: null }],
  };
  assert.deepEqual(dropNullFields(doc), {
    node: { id: "n", metadata: { a: null, b: { c: null } } },
    static_resources: {
      clusters: [{
        name: "c",
        metadata: { filter_metadata: { "envoy.lb": { canary: null } } },
        typed_extension_protocol_options: {
          x: { "@type": "type.googleapis.com/google.protobuf.Struct", k: null },
          y: { "@type": "type.googleapis.com/xds.type.v3.TypedStruct", value: { k: null } },
        },
      }],
    },
    layered_runtime: { layers: [{ name: "s", static_layer: { flag: null } }] },
    access_log: [{ log_format: { json_format: { upstream: null } } }],
  });
});

Deno.test("dropNullFields leaves scalars, a null document and __proto__ keys as they are", () => {
  assert.equal(dropNullFields(null), null);
  assert.equal(dropNullFields("x"), "x");
  const out = dropNullFields(JSON.parse('{"a": {"__proto__": {"polluted": 1}, "b": null}}')) as {
    a: Record<string, unknown>;
  };
  assert.deepEqual(Object.keys(out.a), ["__proto__"]);
  assert.equal(Object.getPrototypeOf(out.a), Object.prototype);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
});
