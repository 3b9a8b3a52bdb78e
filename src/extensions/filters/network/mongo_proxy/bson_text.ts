/**
 * Renders validated BSON documents as Envoy's mongo access log prints them (`Bson::DocumentImpl::toString`):
 * `{"key": value, ...}`, arrays as documents keyed "0", "1", ..., doubles with six decimals, 64-bit integers,
 * dates and timestamps as integers, ObjectIds as quoted hex, regexes as `["pattern", "options"]`. Runs only
 * when an access log is configured.
 *
 * Departures, so that every line is valid JSON: keys, regexes and collection names are escaped like strings,
 * and escaping also covers backslashes and control characters (Envoy escapes only \r \n \t and "). Types
 * Envoy's decoder rejects print as: undefined `null`, Decimal128 `"0x<hex>"`, MinKey/MaxKey
 * `{"$minKey": 1}`/`{"$maxKey": 1}`, JavaScript `"<code>"`, DBPointer `"<namespace>"`.
 */
import { BsonType, int64String, readInt32, utf8 } from "./bson.ts";

/** Envoy's StringUtil::escape made JSON-safe (also \\ and other control characters). */
export function escapeJson(s: string): string {
  let out = "";
  let from = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x20 && c !== 0x22 && c !== 0x5c) continue;
    out += s.slice(from, i);
    from = i + 1;
    if (c === 0x22) out += '\\"';
    else if (c === 0x5c) out += "\\\\";
    else if (c === 0x0a) out += "\\n";
    else if (c === 0x0d) out += "\\r";
    else if (c === 0x09) out += "\\t";
    else out += "\\u" + c.toString(16).padStart(4, "0");
  }
  return from === 0 ? s : out + s.slice(from);
}

function hex(b: Uint8Array, start: number, end: number): string {
  let s = "";
  for (let i = start; i < end; i++) s += b[i].toString(16).padStart(2, "0");
  return s;
}

/** C++ std::to_string(double): "%f". */
function doubleText(v: number): string {
  if (Number.isNaN(v)) return "nan";
  if (!Number.isFinite(v)) return v > 0 ? "inf" : "-inf";
  return v.toFixed(6);
}

/** The document at `doc` as Envoy prints it. */
export function documentText(b: Uint8Array, doc: number): string {
  const last = doc + readInt32(b, doc) - 1;
  let out = "{";
  let p = doc + 4;
  let first = true;
  while (p < last) {
    const t = b[p];
    const ke = b.indexOf(0, p + 1);
    const k = utf8(b, p + 1, ke);
    const r = valueText(b, t, ke + 1);
    out += (first ? '"' : ', "') + escapeJson(k) + '": ' + r.text;
    first = false;
    p = r.end;
  }
  return out + "}";
}

const view = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);

function str(b: Uint8Array, v: number): { text: string; end: number } {
  const n = readInt32(b, v);
  return { text: '"' + escapeJson(utf8(b, v + 4, v + 4 + n - 1)) + '"', end: v + 4 + n };
}

function valueText(b: Uint8Array, t: number, v: number): { text: string; end: number } {
  switch (t) {
    case BsonType.Double:
      return { text: doubleText(view(b).getFloat64(v, true)), end: v + 8 };
    case BsonType.String:
    case BsonType.Symbol:
    case BsonType.JavaScript:
      return str(b, v);
    case BsonType.Document:
    case BsonType.Array:
      return { text: documentText(b, v), end: v + readInt32(b, v) };
    case BsonType.Binary: {
      const n = readInt32(b, v);
      let s = "";
      for (let i = v + 5; i < v + 5 + n; i++) s += String.fromCharCode(b[i]);
      return { text: '"' + escapeJson(s) + '"', end: v + 5 + n };
    }
    case BsonType.ObjectId:
      return { text: '"' + hex(b, v, v + 12) + '"', end: v + 12 };
    case BsonType.Boolean:
      return { text: b[v] !== 0 ? "true" : "false", end: v + 1 };
    case BsonType.Undefined:
    case BsonType.Null:
      return { text: "null", end: v };
    case BsonType.Regex: {
      const pe = b.indexOf(0, v);
      const oe = b.indexOf(0, pe + 1);
      return {
        text: `["${escapeJson(utf8(b, v, pe))}", "${escapeJson(utf8(b, pe + 1, oe))}"]`,
        end: oe + 1,
      };
    }
    case BsonType.Int32:
      return { text: String(readInt32(b, v)), end: v + 4 };
    case BsonType.Datetime:
    case BsonType.Timestamp:
    case BsonType.Int64:
      return { text: int64String(b, v), end: v + 8 };
    case BsonType.Decimal128:
      return { text: '"0x' + hex(b, v, v + 16) + '"', end: v + 16 };
    case BsonType.MinKey:
      return { text: '{"$minKey": 1}', end: v };
    case BsonType.MaxKey:
      return { text: '{"$maxKey": 1}', end: v };
    case BsonType.DbPointer: {
      const s = str(b, v);
      return { text: s.text, end: s.end + 12 };
    }
    case BsonType.JavaScriptWithScope: {
      const s = str(b, v + 4);
      return { text: s.text, end: v + readInt32(b, v) };
    }
    default:
      return { text: "null", end: v };
  }
}
