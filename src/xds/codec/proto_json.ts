/**
 * Binary protobuf -> the JSON shape of Envoy's YAML (proto3 JSON mapping with the proto's snake_case names), so
 * resources from a gRPC management server reach nuncio's zod schemas exactly as a config file would: wrappers as
 * bare values, Duration "1.5s", Timestamp RFC 3339, Struct as plain JSON, Any as {"@type", ...fields}, enums by
 * name, 64-bit integers as decimal strings, bytes as base64, unset fields absent. The reverse is encode.ts.
 */
import protobuf from "protobufjs";
import { plainBytes, typeOfUrl, XdsDecodeError } from "./root.ts";
import { toBase64 } from "./base64.ts";

/** Key added beside "@type" when an Any names a message nuncio's descriptors do not have. */
export const UNDECODED_KEY = "@undecoded";

/** Deepest nesting decoded or encoded (a Struct bomb ends in an error, not a stack overflow). */
export const MAX_DEPTH = 100;

/** A JSON value. */
export type Json = unknown;
/** A JSON object. */
export type JsonObject = Record<string, Json>;
// deno-lint-ignore no-explicit-any -- protobufjs messages are untyped property bags
type Msg = any;

/** The google.protobuf wrapper types (JSON: their bare value). */
export const WRAPPERS: Set<string> = new Set(
  ["Double", "Float", "Int64", "UInt64", "Int32", "UInt32", "Bool", "String", "Bytes"].map((w) =>
    `.google.protobuf.${w}Value`
  ),
);
/** Well-known types whose JSON is not an object of their fields (inside an Any they sit under "value"). */
const NAMES = new WeakMap<protobuf.Type, string>();

/**
 * A type's full name (".pkg.Message"), cached: protobufjs rebuilds `fullName` from the parents on every read,
 * which was the single largest cost of encoding a control plane's snapshot.
 */
export function nameOf(type: protobuf.Type): string {
  let n = NAMES.get(type);
  if (n === undefined) NAMES.set(type, n = type.fullName);
  return n;
}

export const SPECIAL: Set<string> = new Set([
  ...WRAPPERS,
  ".google.protobuf.Duration",
  ".google.protobuf.Timestamp",
  ".google.protobuf.Struct",
  ".google.protobuf.Value",
  ".google.protobuf.ListValue",
  ".google.protobuf.FieldMask",
]);
/** Scalar types carried as decimal strings in JSON. */
export const LONG_TYPES: Set<string> = new Set(["int64", "uint64", "sint64", "fixed64", "sfixed64"]);

/**
 * Decodes the bytes of an Any's value (a resource of `typeUrl`) into its JSON form with "@type" first; runs once
 * per resource received. Throws XdsDecodeError on malformed bytes or a type nuncio has no descriptor for.
 */
export function decodeAny(typeUrl: string, bytes: Uint8Array): JsonObject {
  const type = typeOfUrl(typeUrl);
  if (!type) throw new XdsDecodeError(`Unknown resource type "${typeUrl}"`);
  try {
    return anyJson(typeUrl, type, type.decode(plainBytes(bytes)), 0);
  } catch (e) {
    throw asDecodeError(e, typeUrl);
  }
}

/** Decodes bytes of a message type into its JSON form (no "@type"); throws XdsDecodeError. */
export function decodeMessage(type: protobuf.Type, bytes: Uint8Array): JsonObject {
  try {
    return messageJson(type, type.decode(plainBytes(bytes)), 0) as JsonObject;
  } catch (e) {
    throw asDecodeError(e, nameOf(type).slice(1));
  }
}

/** Converts an already decoded protobufjs message into its JSON form; throws XdsDecodeError. */
export function messageToJson(type: protobuf.Type, msg: Msg): Json {
  try {
    return messageJson(type, msg, 0);
  } catch (e) {
    throw asDecodeError(e, nameOf(type).slice(1));
  }
}

function asDecodeError(e: unknown, what: string): XdsDecodeError {
  if (e instanceof XdsDecodeError) return e;
  const why = e instanceof RangeError && /call stack/i.test(e.message) ? "nested too deeply" : String(
    (e as Error)?.message ?? e,
  );
  return new XdsDecodeError(`Malformed ${what}: ${why}`);
}

function anyJson(typeUrl: string, type: protobuf.Type, msg: Msg, depth: number): JsonObject {
  const body = messageJson(type, msg, depth + 1);
  return SPECIAL.has(nameOf(type))
    ? { "@type": typeUrl, value: body }
    : { "@type": typeUrl, ...body as object };
}

function messageJson(type: protobuf.Type, msg: Msg, depth: number): Json {
  if (depth > MAX_DEPTH) throw new XdsDecodeError(`Message nested deeper than ${MAX_DEPTH} levels`);
  switch (nameOf(type)) {
    case ".google.protobuf.Any": {
      const url: string = msg.type_url ?? "";
      if (!url) throw new XdsDecodeError("A google.protobuf.Any has no type_url");
      const inner = typeOfUrl(url);
      if (!inner) return { "@type": url, [UNDECODED_KEY]: `Message type ${url} is unknown to nuncio` };
      try {
        return anyJson(url, inner, inner.decode(plainBytes(msg.value ?? new Uint8Array())), depth);
      } catch (e) {
        throw e instanceof XdsDecodeError
          ? e
          : new XdsDecodeError(`Malformed ${url}: ${(e as Error).message}`);
      }
    }
    case ".google.protobuf.Duration":
      return durationText(msg.seconds ?? 0, msg.nanos ?? 0);
    case ".google.protobuf.Timestamp":
      return timestampText(msg.seconds ?? 0, msg.nanos ?? 0);
    case ".google.protobuf.Struct":
      return structJson(msg, depth);
    case ".google.protobuf.ListValue":
      return (msg.values ?? []).map((v: Msg) => valueJson(v, depth + 1));
    case ".google.protobuf.Value":
      return valueJson(msg, depth);
    case ".google.protobuf.FieldMask":
      return (msg.paths ?? []).join(",");
  }
  if (WRAPPERS.has(nameOf(type))) {
    return scalarJson(type.fields.value, msg.value ?? defaultOf(type.fields.value));
  }
  const out: JsonObject = {};
  // own properties are the fields on the wire (plus the empty arrays and maps protobufjs creates)
  const fields = type.fields;
  for (const name of Object.keys(msg)) {
    const field = Object.hasOwn(fields, name) ? fields[name] : undefined;
    if (!field) continue;
    const v = msg[name];
    if (v === null || v === undefined) continue;
    if (field.map) {
      const keys = Object.keys(v);
      if (keys.length === 0) continue;
      const o: JsonObject = {};
      for (const k of keys) setKey(o, k, fieldValueJson(field, v[k], depth));
      out[name] = o;
    } else if (field.repeated) {
      if (v.length === 0) continue;
      out[name] = Array.from(v, (e) => fieldValueJson(field, e, depth));
    } else {
      // proto3 implicit presence: a default scalar is the same as unset (message fields always count)
      if (!field.partOf && !(field.resolvedType instanceof protobuf.Type) && isDefault(v)) continue;
      out[name] = fieldValueJson(field, v, depth);
    }
  }
  return out;
}

function fieldValueJson(field: protobuf.Field, v: Msg, depth: number): Json {
  const rt = field.resolvedType;
  if (rt instanceof protobuf.Type) return messageJson(rt, v, depth + 1);
  if (rt instanceof protobuf.Enum) return rt.valuesById[v] ?? v;
  return scalarJson(field, v);
}

function scalarJson(field: protobuf.Field, v: Msg): Json {
  if (LONG_TYPES.has(field.type)) return String(v);
  if (field.type === "bytes") return toBase64(v);
  if ((field.type === "double" || field.type === "float") && !Number.isFinite(v)) return String(v);
  return v;
}

function defaultOf(field: protobuf.Field): Json {
  return field.type === "string"
    ? ""
    : field.type === "bool"
    ? false
    : field.type === "bytes"
    ? new Uint8Array()
    : 0;
}

function isDefault(v: Msg): boolean {
  if (v === 0 || v === false || v === "") return true;
  if (v instanceof Uint8Array) return v.length === 0;
  return typeof v === "object" && typeof v.isZero === "function" && v.isZero();
}

/** Sets an own property even for "__proto__" (as JSON.parse does), so sent keys never touch a prototype. */
export function setKey(o: JsonObject, k: string, v: Json): void {
  if (k === "__proto__") {
    Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
  } else o[k] = v;
}

function structJson(msg: Msg, depth: number): JsonObject {
  const out: JsonObject = {};
  for (const [k, v] of Object.entries(msg.fields ?? {})) setKey(out, k, valueJson(v, depth + 1));
  return out;
}

function valueJson(v: Msg, depth: number): Json {
  if (depth > MAX_DEPTH) throw new XdsDecodeError(`Struct nested deeper than ${MAX_DEPTH} levels`);
  switch (v?.kind) {
    case "number_value":
      return v.number_value;
    case "string_value":
      return v.string_value;
    case "bool_value":
      return v.bool_value;
    case "struct_value":
      return structJson(v.struct_value, depth);
    case "list_value":
      return (v.list_value.values ?? []).map((e: Msg) => valueJson(e, depth + 1));
    default:
      return null;
  }
}

/** Duration as proto3 JSON: "-1.5s", "30s", "0.000000001s". */
export function durationText(seconds: number | protobuf.Long, nanos: number): string {
  const n = typeof seconds === "number" ? seconds : seconds.high * 4294967296 + (seconds.low >>> 0);
  const s = Number.isSafeInteger(n) || typeof seconds === "number"
    ? n
    : BigInt(seconds.high) * 4294967296n + BigInt(seconds.low >>> 0);
  const neg = s < 0 || nanos < 0;
  const abs = (s < 0 ? -s : s).toString();
  const frac = Math.abs(nanos) ? "." + String(Math.abs(nanos)).padStart(9, "0").replace(/0+$/, "") : "";
  return `${neg ? "-" : ""}${abs}${frac}s`;
}

function timestampText(seconds: number | protobuf.Long, nanos: number): string {
  const ms = Number(String(seconds)) * 1000;
  const base = new Date(ms).toISOString().slice(0, 19);
  const frac = nanos ? "." + String(nanos).padStart(9, "0").replace(/0+$/, "") : "";
  return `${base}${frac}Z`;
}
