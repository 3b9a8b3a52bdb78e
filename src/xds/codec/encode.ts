/**
 * JSON of Envoy's YAML shape -> binary protobuf: the reverse of proto_json.ts (tests build management-server
 * responses with it; /config_dump may). Unknown fields, types and enum names are errors naming the field path.
 */
import protobuf from "protobufjs";
import { typeOfUrl, XdsEncodeError } from "./root.ts";
import { fromBase64 } from "./base64.ts";
import {
  type Json,
  type JsonObject,
  LONG_TYPES,
  MAX_DEPTH,
  nameOf,
  setKey,
  SPECIAL,
  WRAPPERS,
} from "./proto_json.ts";

/**
 * Encodes a JSON object of Envoy's YAML shape (an "@type" is ignored) as the message `typeUrl` names: the bytes
 * an Any's value carries. Tests build server responses with it; throws XdsEncodeError naming the field path.
 */
export function encodeAny(typeUrl: string, json: JsonObject): Uint8Array {
  return anyValueFromJson(typeUrl, json, "", 0);
}

/** Encodes JSON of Envoy's YAML shape as `type`; throws XdsEncodeError naming the field path. */
export function encodeMessage(type: protobuf.Type, json: Json): Uint8Array {
  return encodeAt(type, messageFromJson(type, json, "", 0), "");
}

function anyValueFromJson(typeUrl: string, json: JsonObject, path: string, depth: number): Uint8Array {
  const type = typeOfUrl(typeUrl);
  if (!type) fail(path, `unknown message type "${typeUrl}"`);
  const { "@type": _t, ...fields } = json;
  const body = SPECIAL.has(nameOf(type)) ? json.value : fields;
  return encodeAt(type, messageFromJson(type, body, path, depth + 1), path);
}

function encodeAt(type: protobuf.Type, plain: Json, path: string): Uint8Array {
  try {
    return type.encode(type.fromObject(plain as JsonObject)).finish();
  } catch (e) {
    return fail(path, `cannot encode ${nameOf(type).slice(1)}: ${(e as Error).message}`);
  }
}

function fail(path: string, message: string): never {
  throw new XdsEncodeError(`${path || "(root)"}: ${message}`);
}

function isObject(v: Json): v is JsonObject {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function messageFromJson(type: protobuf.Type, json: Json, path: string, depth: number): Json {
  if (depth > MAX_DEPTH) fail(path, `nested deeper than ${MAX_DEPTH} levels`);
  const name = nameOf(type);
  switch (name) {
    case ".google.protobuf.Any": {
      if (!isObject(json) || typeof json["@type"] !== "string") fail(path, 'an Any needs an "@type"');
      const url = json["@type"] as string;
      return { type_url: url, value: anyValueFromJson(url, json, path, depth) };
    }
    case ".google.protobuf.Duration":
      return durationFromJson(json, path);
    case ".google.protobuf.Timestamp":
      return timestampFromJson(json, path);
    case ".google.protobuf.Struct":
      if (!isObject(json)) fail(path, "expected an object");
      return structFromJson(json, depth);
    case ".google.protobuf.ListValue":
      if (!Array.isArray(json)) fail(path, "expected an array");
      return { values: json.map((v) => valueFromJson(v, depth + 1)) };
    case ".google.protobuf.Value":
      return valueFromJson(json, depth);
    case ".google.protobuf.FieldMask":
      return { paths: typeof json === "string" ? json.split(",").filter(Boolean) : json };
  }
  if (WRAPPERS.has(name)) return { value: scalarFromJson(type.fields.value, json, path) };
  if (!isObject(json)) fail(path, `expected an object (${nameOf(type).slice(1)})`);
  const out: JsonObject = {};
  for (const [key, v] of Object.entries(json)) {
    const field = Object.hasOwn(type.fields, key) ? type.fields[key] : undefined;
    const p = path ? `${path}.${key}` : key;
    if (!field) fail(p, `unknown field of ${nameOf(type).slice(1)}`);
    if (v === null || v === undefined) continue;
    if (field.map) {
      if (!isObject(v)) fail(p, "expected an object");
      out[key] = Object.fromEntries(
        Object.entries(v).map(([k, e]) => [k, fieldFromJson(field, e, `${p}.${k}`, depth)]),
      );
    } else if (field.repeated) {
      if (!Array.isArray(v)) fail(p, "expected an array");
      out[key] = v.map((e, i) => fieldFromJson(field, e, `${p}[${i}]`, depth));
    } else {
      out[key] = fieldFromJson(field, v, p, depth);
    }
  }
  return out;
}

function fieldFromJson(field: protobuf.Field, v: Json, path: string, depth: number): Json {
  const rt = field.resolvedType;
  if (rt instanceof protobuf.Type) return messageFromJson(rt, v, path, depth + 1);
  if (rt instanceof protobuf.Enum) {
    // Envoy's JSON loader parses enum names case-insensitively (`type: logical_dns` loads)
    if (typeof v === "string" && Object.hasOwn(rt.values, v)) return rt.values[v];
    if (typeof v === "string" && Object.hasOwn(rt.values, v.toUpperCase())) return rt.values[v.toUpperCase()];
    if (typeof v === "number" && Number.isInteger(v)) return v;
    return fail(path, `unknown ${rt.name} value ${JSON.stringify(v)}`);
  }
  return scalarFromJson(field, v, path);
}

function scalarFromJson(field: protobuf.Field, v: Json, path: string): Json {
  switch (field.type) {
    case "string":
      if (typeof v !== "string") fail(path, "expected a string");
      return v;
    case "bool":
      if (typeof v !== "boolean") fail(path, "expected a boolean");
      return v;
    case "bytes":
      if (typeof v !== "string") fail(path, "expected base64 text");
      try {
        return fromBase64(v);
      } catch {
        return fail(path, "expected base64 text");
      }
    case "double":
    case "float":
      if (typeof v === "number" || v === "NaN" || v === "Infinity" || v === "-Infinity") return Number(v);
      return fail(path, "expected a number");
  }
  // integers: a number or a decimal string (64-bit values are strings in proto3 JSON)
  if (typeof v === "number" && Number.isInteger(v)) return LONG_TYPES.has(field.type) ? String(v) : v;
  if (typeof v === "string" && /^-?\d+$/.test(v)) return LONG_TYPES.has(field.type) ? v : Number(v);
  return fail(path, `expected an integer (${field.type})`);
}

const DURATION_RE = /^(-)?(\d+)(?:\.(\d{1,9}))?s$/;

function durationFromJson(v: Json, path: string): Json {
  if (isObject(v)) return { seconds: String(v.seconds ?? 0), nanos: Number(v.nanos ?? 0) };
  const m = typeof v === "string" ? DURATION_RE.exec(v.trim()) : null;
  if (!m) return fail(path, `expected a duration like "1.5s", got ${JSON.stringify(v)}`);
  const sign = m[1] ? -1 : 1;
  const nanos = Number((m[3] ?? "").padEnd(9, "0"));
  return { seconds: (m[1] ?? "") + m[2], nanos: sign * nanos };
}

const TIMESTAMP_RE = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$/;

function timestampFromJson(v: Json, path: string): Json {
  const m = typeof v === "string" ? TIMESTAMP_RE.exec(v) : null;
  const ms = m ? Date.parse(m[1] + m[3]) : NaN;
  if (!m || Number.isNaN(ms)) return fail(path, `expected an RFC 3339 timestamp, got ${JSON.stringify(v)}`);
  return { seconds: String(ms / 1000), nanos: Number((m[2] ?? "").padEnd(9, "0")) };
}

function structFromJson(json: JsonObject, depth: number): Json {
  const fields: JsonObject = {};
  for (const [k, v] of Object.entries(json)) setKey(fields, k, valueFromJson(v, depth + 1));
  return { fields };
}

function valueFromJson(v: Json, depth: number): Json {
  if (depth > MAX_DEPTH) fail("", `Struct nested deeper than ${MAX_DEPTH} levels`);
  if (v === null || v === undefined) return { null_value: 0 };
  if (typeof v === "number") return { number_value: v };
  if (typeof v === "string") return { string_value: v };
  if (typeof v === "boolean") return { bool_value: v };
  if (Array.isArray(v)) return { list_value: { values: v.map((e) => valueFromJson(e, depth + 1)) } };
  return { struct_value: structFromJson(v as JsonObject, depth) };
}
