/**
 * Decodes a serialized google.protobuf.Value (header_to_metadata's PROTOBUF_VALUE type) into its JSON form:
 * null, number, string, boolean, Struct (object) or ListValue (array). Throws on malformed input.
 */
import { ProtoReader, WIRE_FIXED64, WIRE_LEN, WIRE_VARINT } from "../../../../grpc/protobuf.ts";

/** The deepest nesting accepted (protobuf's default recursion limit). */
const MAX_DEPTH = 100;

/** The JSON value of the Value message in `buf` (an empty message is null, as a Value without kind). */
export function decodeProtobufValue(buf: Uint8Array): unknown {
  return value(new ProtoReader(buf), 0);
}

function value(r: ProtoReader, depth: number): unknown {
  if (depth > MAX_DEPTH) throw new RangeError("Value nested too deeply");
  let out: unknown = null;
  while (r.pos < r.end) {
    const tag = r.varint();
    const field = Math.floor(tag / 8);
    const wire = tag & 7;
    if (field === 1 && wire === WIRE_VARINT) {
      r.varint();
      out = null;
    } else if (field === 2 && wire === WIRE_FIXED64) {
      if (r.pos + 8 > r.end) throw new RangeError("Truncated double");
      out = new DataView(r.buf.buffer, r.buf.byteOffset + r.pos, 8).getFloat64(0, true);
      r.pos += 8;
    } else if (field === 3 && wire === WIRE_LEN) {
      out = r.string();
    } else if (field === 4 && wire === WIRE_VARINT) {
      out = r.varint() !== 0;
    } else if (field === 5 && wire === WIRE_LEN) {
      const end = r.lenEnd();
      out = struct(new ProtoReader(r.buf, r.pos, end), depth + 1);
      r.pos = end;
    } else if (field === 6 && wire === WIRE_LEN) {
      const end = r.lenEnd();
      out = list(new ProtoReader(r.buf, r.pos, end), depth + 1);
      r.pos = end;
    } else {
      r.skip(wire);
    }
  }
  return out;
}

/** google.protobuf.Struct: `map<string, Value> fields = 1`. */
function struct(r: ProtoReader, depth: number): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  while (r.pos < r.end) {
    const tag = r.varint();
    if (tag !== (1 << 3 | WIRE_LEN)) {
      r.skip(tag & 7);
      continue;
    }
    const end = r.lenEnd();
    const e = new ProtoReader(r.buf, r.pos, end);
    let key = "";
    let v: unknown = null;
    while (e.pos < e.end) {
      const t = e.varint();
      if (t === (1 << 3 | WIRE_LEN)) key = e.string();
      else if (t === (2 << 3 | WIRE_LEN)) {
        const ve = e.lenEnd();
        v = value(new ProtoReader(e.buf, e.pos, ve), depth + 1);
        e.pos = ve;
      } else e.skip(t & 7);
    }
    Object.defineProperty(out, key, { value: v, enumerable: true, writable: true, configurable: true });
    r.pos = end;
  }
  return out;
}

/** google.protobuf.ListValue: `repeated Value values = 1`. */
function list(r: ProtoReader, depth: number): unknown[] {
  const out: unknown[] = [];
  while (r.pos < r.end) {
    const tag = r.varint();
    if (tag !== (1 << 3 | WIRE_LEN)) {
      r.skip(tag & 7);
      continue;
    }
    const end = r.lenEnd();
    out.push(value(new ProtoReader(r.buf, r.pos, end), depth + 1));
    r.pos = end;
  }
  return out;
}
