/**
 * Normalizes a parsed config document before schema validation, as protobuf's JSON parser reads it: a field
 * whose value is null (`typed_config:` with nothing after it in YAML) is not set. Payloads of
 * google.protobuf.Struct/Value/ListValue keep their nulls: there null is data.
 */

/** Fields whose whole value is a Struct (or a map of Structs), found by key wherever they appear. */
const STRUCT_FIELDS = new Set([
  "filter_metadata", // envoy.config.core.v3.Metadata: map<string, google.protobuf.Struct>
  "json_format", // envoy.config.core.v3.SubstitutionFormatString
  "static_layer", // envoy.config.bootstrap.v3.RuntimeLayer
  "default_subset", // envoy.config.cluster.v3.Cluster.LbSubsetConfig
]);

/** Any payloads that are themselves a Struct, Value or ListValue. */
const STRUCT_TYPES = /\/google\.protobuf\.(Struct|Value|ListValue)$/;
/** Any payloads whose `value` field is a Struct. */
const TYPED_STRUCT_TYPES = /\/(udpa\.type\.v1|xds\.type\.v3)\.TypedStruct$/;

/**
 * Drops every object key whose value is null (recursively), except inside Struct payloads; the input is not
 * modified. `node.metadata` at the top level is a Struct too.
 */
export function dropNullFields(doc: unknown): unknown {
  if (!isObject(doc)) return strip(doc);
  const out = strip(doc) as Record<string, unknown>;
  const node = doc.node;
  if (isObject(node) && node.metadata !== null && node.metadata !== undefined && isObject(out.node)) {
    (out.node as Record<string, unknown>).metadata = node.metadata;
  }
  return out;
}

function strip(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(strip);
  if (!isObject(v)) return v;
  const type = v["@type"];
  if (typeof type === "string" && STRUCT_TYPES.test(type)) return v;
  const typedStruct = typeof type === "string" && TYPED_STRUCT_TYPES.test(type);
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) {
    if (x === null) continue;
    const value = STRUCT_FIELDS.has(k) || (typedStruct && k === "value") ? x : strip(x);
    // a "__proto__" key is data: define it rather than set the prototype
    Object.defineProperty(out, k, { value, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
