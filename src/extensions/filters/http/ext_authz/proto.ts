/**
 * Protobuf codec of `envoy.service.auth.v3.Authorization/Check` (field numbers from external_auth.proto,
 * attribute_context.proto and envoy/config/core/v3 address.proto and base.proto): the CheckRequest is written
 * size-first into one exact buffer (the body is copied once), the CheckResponse read into an AuthzResponse.
 * Unknown fields are skipped. google.protobuf.Struct (metadata_context out, dynamic_metadata in) is converted
 * to and from plain JSON values.
 */
import {
  ProtoReader,
  ProtoWriter,
  utf8Length,
  varintSize,
  WIRE_FIXED64,
  WIRE_LEN,
  WIRE_VARINT,
} from "../../../../grpc/protobuf.ts";
import {
  type AuthzResponse,
  type CheckInput,
  type CheckPeer,
  CheckStatus,
  emptyResponse,
  type HeaderMutation,
  latin1Bytes,
  MutationAction,
  sanitizeUtf8,
} from "./check.ts";

/** The RPC path of Check. */
export const CHECK_PATH = "/envoy.service.auth.v3.Authorization/Check";

// ---- CheckRequest -----------------------------------------------------------------------------------------

/** Bytes of a length-delimited field (one-byte tag) with `len` payload bytes. */
function field(len: number): number {
  return 1 + varintSize(len) + len;
}

/** Bytes of a string field, 0 when empty (proto3 leaves it out). */
function str(s: string): number {
  return s === "" ? 0 : field(utf8Length(s));
}

/** Bytes of a map<string,string> entry's payload (key and value always written). */
function entry(k: string, v: string): number {
  return field(utf8Length(k)) + field(utf8Length(v));
}

function socketAddressLen(p: CheckPeer): number {
  return str(p.address) + (p.port > 0 ? 1 + varintSize(p.port) : 0);
}

function peerLen(p: CheckPeer): number {
  return field(field(socketAddressLen(p))) + str(p.service) + str(p.principal) + str(p.certificate);
}

function timestampLen(ms: number): number {
  const s = Math.floor(ms / 1000);
  const nanos = Math.round((ms - s * 1000) * 1e6);
  return (s > 0 ? 1 + varintSize(s) : 0) + (nanos > 0 ? 1 + varintSize(nanos) : 0);
}

/** Sizes computed once and reused by the writer. */
interface Sizes {
  headers: number[];
  http: number;
  request: number;
  attributes: number;
  ext: number[];
  /** The encoded metadata_context (envoy.config.core.v3.Metadata). */
  metadata: Uint8Array;
}

function httpLen(c: CheckInput, sizes: number[]): number {
  let n = str(c.id) + str(c.method) + str(c.path) + str(c.host) + str(c.scheme) + str(c.protocol);
  if (c.size > 0) n += 1 + varintSize(c.size);
  const names = c.headerNames, values = c.headerValues;
  if (c.rawHeaders) {
    let map = 0;
    for (let i = 0; i < names.length; i++) {
      const e = str(names[i]) + (values[i] === "" ? 0 : field(values[i].length));
      sizes.push(e);
      map += field(e);
    }
    n += field(map);
  } else {
    for (let i = 0; i < names.length; i++) {
      const e = entry(names[i], values[i]);
      sizes.push(e);
      n += field(e);
    }
  }
  if (c.body !== null && c.body.length > 0) n += field(c.body.length);
  return n;
}

function computeSizes(c: CheckInput): Sizes {
  const headers: number[] = [];
  const http = httpLen(c, headers);
  const request = field(timestampLen(c.startTimeMs)) + field(http);
  const ext: number[] = [];
  let attributes = field(peerLen(c.source)) + field(peerLen(c.destination)) + field(request);
  if (c.contextExtensions !== null) {
    for (const k in c.contextExtensions) {
      const e = entry(k, c.contextExtensions[k]);
      ext.push(e);
      attributes += field(e);
    }
  }
  const metadata = c.metadataContext === null ? EMPTY : encodeMetadata(c.metadataContext);
  attributes += field(metadata.length); // metadata_context: present even when empty, as Envoy sends it
  if (c.sni !== null) attributes += field(str(c.sni));
  attributes += 2; // route_metadata_context: likewise
  return { headers, http, request, attributes, ext, metadata };
}

function writeString(w: ProtoWriter, fieldNo: number, s: string): void {
  if (s !== "") w.stringField(fieldNo, s, utf8Length(s));
}

function writeEntry(w: ProtoWriter, fieldNo: number, len: number, k: string, v: string): void {
  w.beginMessage(fieldNo, len);
  w.stringField(1, k, utf8Length(k));
  w.stringField(2, v, utf8Length(v));
}

function writePeer(w: ProtoWriter, fieldNo: number, p: CheckPeer): void {
  w.beginMessage(fieldNo, peerLen(p));
  const sa = socketAddressLen(p);
  w.beginMessage(1, field(sa)); // Peer.address
  w.beginMessage(1, sa); // Address.socket_address
  writeString(w, 2, p.address);
  if (p.port > 0) w.uintField(3, p.port);
  writeString(w, 2, p.service);
  writeString(w, 4, p.principal);
  writeString(w, 5, p.certificate);
}

function writeHttp(w: ProtoWriter, c: CheckInput, s: Sizes): void {
  w.beginMessage(2, s.http);
  writeString(w, 1, c.id);
  writeString(w, 2, c.method);
  const names = c.headerNames, values = c.headerValues;
  if (!c.rawHeaders) {
    for (let i = 0; i < names.length; i++) writeEntry(w, 3, s.headers[i], names[i], values[i]);
  }
  writeString(w, 4, c.path);
  writeString(w, 5, c.host);
  writeString(w, 6, c.scheme);
  if (c.size > 0) w.uintField(9, c.size);
  writeString(w, 10, c.protocol);
  const body = c.body;
  if (body !== null && body.length > 0) {
    w.bytesField(c.packAsBytes ? 12 : 11, c.packAsBytes ? body : sanitizeUtf8(body));
  }
  if (c.rawHeaders) {
    let map = 0;
    for (const e of s.headers) map += field(e);
    w.beginMessage(13, map);
    for (let i = 0; i < names.length; i++) {
      w.beginMessage(1, s.headers[i]);
      writeString(w, 1, names[i]);
      if (values[i] !== "") w.bytesField(3, latin1Bytes(values[i]));
    }
  }
}

/**
 * Encodes the CheckRequest of `c` (runs once per check). With a body that is not valid UTF-8 and
 * pack_as_bytes off, invalid bytes become "!" (same length), as Envoy sanitizes it.
 */
export function encodeCheckRequest(c: CheckInput): Uint8Array {
  const s = computeSizes(c);
  const w = new ProtoWriter(field(s.attributes));
  w.beginMessage(1, s.attributes); // CheckRequest.attributes
  writePeer(w, 1, c.source);
  writePeer(w, 2, c.destination);
  w.beginMessage(4, s.request); // AttributeContext.request
  const ms = c.startTimeMs;
  const secs = Math.floor(ms / 1000);
  const nanos = Math.round((ms - secs * 1000) * 1e6);
  w.beginMessage(1, timestampLen(ms));
  if (secs > 0) w.uintField(1, secs);
  if (nanos > 0) w.uintField(2, nanos);
  writeHttp(w, c, s);
  if (c.contextExtensions !== null) {
    let i = 0;
    for (const k in c.contextExtensions) writeEntry(w, 10, s.ext[i++], k, c.contextExtensions[k]);
  }
  w.bytesField(11, s.metadata);
  if (c.sni !== null) {
    w.beginMessage(12, str(c.sni));
    writeString(w, 1, c.sni);
  }
  w.beginMessage(13, 0);
  if (w.pos !== w.buf.length) throw new Error(`CheckRequest size mismatch: ${w.pos} of ${w.buf.length}`);
  return w.buf;
}

// ---- google.protobuf.Struct --------------------------------------------------------------------------------

const EMPTY = new Uint8Array(0);
const textEncoder = new TextEncoder();
/** Nesting deeper than this in a Struct from the service is refused (a malformed or hostile answer). */
const MAX_DEPTH = 64;

/** `tag` + length + `payload` as one field (payload copied once). */
function lenField(fieldNo: number, payload: Uint8Array): Uint8Array {
  const w = new ProtoWriter(1 + varintSize(payload.length) + payload.length);
  w.bytesField(fieldNo, payload);
  return w.buf;
}

function joinParts(parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** A google.protobuf.Value of a JSON value (undefined and functions become null_value). */
function encodeValue(v: unknown): Uint8Array {
  if (typeof v === "number") {
    const out = new Uint8Array(9);
    out[0] = (2 << 3) | WIRE_FIXED64;
    new DataView(out.buffer).setFloat64(1, v, true);
    return out;
  }
  if (typeof v === "string") return lenField(3, textEncoder.encode(v));
  if (typeof v === "boolean") return new Uint8Array([(4 << 3) | WIRE_VARINT, v ? 1 : 0]);
  if (Array.isArray(v)) return lenField(6, joinParts(v.map((x) => lenField(1, encodeValue(x)))));
  if (v !== null && typeof v === "object") return lenField(5, encodeStruct(v as Record<string, unknown>));
  return new Uint8Array([(1 << 3) | WIRE_VARINT, 0]);
}

/** A google.protobuf.Struct of a JSON object. */
function encodeStruct(o: Record<string, unknown>): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const k in o) {
    parts.push(lenField(1, joinParts([lenField(1, textEncoder.encode(k)), lenField(2, encodeValue(o[k]))])));
  }
  return joinParts(parts);
}

/** envoy.config.core.v3.Metadata with `filter_metadata` (namespace -> Struct); runs only when configured. */
export function encodeMetadata(ns: Readonly<Record<string, Record<string, unknown>>>): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const k in ns) {
    parts.push(
      lenField(1, joinParts([lenField(1, textEncoder.encode(k)), lenField(2, encodeStruct(ns[k]))])),
    );
  }
  return joinParts(parts);
}

function readValue(r: ProtoReader, end: number, depth: number): unknown {
  if (depth > MAX_DEPTH) throw new RangeError("Struct nested too deep");
  let v: unknown = null;
  while (r.pos < end) {
    const tag = r.varint();
    const f = tag >>> 3, wire = tag & 7;
    if (f === 1 && wire === WIRE_VARINT) {
      r.varint();
      v = null;
    } else if (f === 2 && wire === WIRE_FIXED64) {
      if (r.pos + 8 > end) throw new RangeError("Truncated number_value");
      v = new DataView(r.buf.buffer, r.buf.byteOffset + r.pos, 8).getFloat64(0, true);
      r.pos += 8;
    } else if (f === 3 && wire === WIRE_LEN) v = r.string();
    else if (f === 4 && wire === WIRE_VARINT) v = r.varint() !== 0;
    else if (f === 5 && wire === WIRE_LEN) v = readStruct(r, r.lenEnd(), depth + 1);
    else if (f === 6 && wire === WIRE_LEN) {
      const lend = r.lenEnd();
      const list: unknown[] = [];
      while (r.pos < lend) {
        const t = r.varint();
        if (t === ((1 << 3) | WIRE_LEN)) list.push(readValue(r, r.lenEnd(), depth + 1));
        else r.skip(t & 7);
      }
      v = list;
    } else r.skip(wire);
  }
  r.pos = end;
  return v;
}

/** Reads a google.protobuf.Struct in [r.pos, end) into a plain object. */
function readStruct(r: ProtoReader, end: number, depth: number): Record<string, unknown> {
  if (depth > MAX_DEPTH) throw new RangeError("Struct nested too deep");
  const out: Record<string, unknown> = {};
  while (r.pos < end) {
    const tag = r.varint();
    if (tag !== ((1 << 3) | WIRE_LEN)) {
      r.skip(tag & 7);
      continue;
    }
    const eend = r.lenEnd();
    let k = "";
    let v: unknown = null;
    while (r.pos < eend) {
      const t = r.varint();
      if (t === ((1 << 3) | WIRE_LEN)) k = r.string();
      else if (t === ((2 << 3) | WIRE_LEN)) v = readValue(r, r.lenEnd(), depth + 1);
      else r.skip(t & 7);
    }
    out[k] = v;
  }
  r.pos = end;
  return out;
}

// ---- CheckResponse ----------------------------------------------------------------------------------------

function expectLen(wire: number, what: string): void {
  if (wire !== WIRE_LEN) throw new RangeError(`Wrong wire type ${wire} for ${what}`);
}

/** google.rpc.Status.code. */
function readStatusCode(r: ProtoReader, end: number): number {
  let code = 0;
  while (r.pos < end) {
    const tag = r.varint();
    if (tag === ((1 << 3) | WIRE_VARINT)) code = r.varint() | 0;
    else r.skip(tag & 7);
  }
  return code;
}

/** One HeaderValueOption as a mutation; `response`: headers for a response (append: true adds a line). */
function readHeaderOption(
  r: ProtoReader,
  end: number,
  response: boolean,
  out: AuthzResponse,
): HeaderMutation {
  let key = "", value = "";
  let append: boolean | undefined;
  let appendAction = 0;
  while (r.pos < end) {
    const tag = r.varint();
    const f = tag >>> 3, wire = tag & 7;
    if (f === 1 && wire === WIRE_LEN) {
      const hend = r.lenEnd();
      while (r.pos < hend) {
        const t = r.varint();
        if (t === ((1 << 3) | WIRE_LEN)) key = r.string();
        else if (t === ((2 << 3) | WIRE_LEN)) value = r.string();
        else r.skip(t & 7);
      }
    } else if (f === 2 && wire === WIRE_LEN) {
      const bend = r.lenEnd();
      append = false;
      while (r.pos < bend) {
        const t = r.varint();
        if (t === ((1 << 3) | WIRE_VARINT)) append = r.varint() !== 0;
        else r.skip(t & 7);
      }
    } else if (f === 3 && wire === WIRE_VARINT) appendAction = r.varint();
    else r.skip(wire);
  }
  let action: MutationAction;
  if (append !== undefined) {
    // the deprecated BoolValue wins over append_action, as in Envoy
    action = append ? (response ? MutationAction.Add : MutationAction.Append) : MutationAction.Set;
  } else {
    switch (appendAction) {
      case 0: // APPEND_IF_EXISTS_OR_ADD
        action = MutationAction.Add;
        break;
      case 1: // ADD_IF_ABSENT
        action = MutationAction.AddIfAbsent;
        break;
      case 2: // OVERWRITE_IF_EXISTS_OR_ADD
        action = MutationAction.Set;
        break;
      case 3: // OVERWRITE_IF_EXISTS
        action = MutationAction.OverwriteIfExists;
        break;
      default:
        out.sawInvalidAppendAction = true;
        action = MutationAction.Set;
    }
  }
  return { key: key.toLowerCase(), value, action };
}

/** DeniedHttpResponse (denied_response and error_response) into `out`. */
function readDenied(r: ProtoReader, end: number, out: AuthzResponse): void {
  while (r.pos < end) {
    const tag = r.varint();
    const f = tag >>> 3, wire = tag & 7;
    if (f === 1 && wire === WIRE_LEN) {
      const code = readStatusCode(r, r.lenEnd()); // type.v3.HttpStatus.code
      if (code > 0) out.statusCode = code;
    } else if (f === 2 && wire === WIRE_LEN) {
      out.responseHeaders.push(readHeaderOption(r, r.lenEnd(), true, out));
    } else if (f === 3 && wire === WIRE_LEN) out.body = r.string();
    else r.skip(wire);
  }
}

function readOk(r: ProtoReader, end: number, out: AuthzResponse): void {
  while (r.pos < end) {
    const tag = r.varint();
    const f = tag >>> 3, wire = tag & 7;
    if (f === 2) {
      expectLen(wire, "ok_response.headers");
      out.requestHeaders.push(readHeaderOption(r, r.lenEnd(), false, out));
    } else if (f === 5) {
      expectLen(wire, "ok_response.headers_to_remove");
      out.headersToRemove.push(r.string().toLowerCase());
    } else if (f === 6) {
      expectLen(wire, "ok_response.response_headers_to_add");
      out.responseHeaders.push(readHeaderOption(r, r.lenEnd(), true, out));
    } else if (f === 7) {
      expectLen(wire, "ok_response.query_parameters_to_set");
      const qend = r.lenEnd();
      let k = "", v = "";
      while (r.pos < qend) {
        const t = r.varint();
        if (t === ((1 << 3) | WIRE_LEN)) k = r.string();
        else if (t === ((2 << 3) | WIRE_LEN)) v = r.string();
        else r.skip(t & 7);
      }
      out.queryToSet.push([k, v]);
    } else if (f === 8) {
      expectLen(wire, "ok_response.query_parameters_to_remove");
      out.queryToRemove.push(r.string());
    } else if (f === 3) {
      // the deprecated ok_response.dynamic_metadata overrides the response's, as in Envoy
      expectLen(wire, "ok_response.dynamic_metadata");
      out.dynamicMetadata = readStruct(r, r.lenEnd(), 0);
    } else r.skip(wire);
  }
}

/**
 * Decodes a CheckResponse (Envoy's GrpcClientImpl::onSuccess): status OK is an OK decision with the
 * ok_response mutations; an error_response makes it an Error (its status, headers and body kept for the local
 * reply); any other status is Denied, 403 unless denied_response says otherwise. Throws on malformed bytes.
 */
export function decodeCheckResponse(bytes: Uint8Array): AuthzResponse {
  const r = new ProtoReader(bytes);
  let code = 0;
  let ok: [number, number] | null = null;
  let denied: [number, number] | null = null;
  let error: [number, number] | null = null;
  let metadata: Record<string, unknown> | null = null;
  while (r.pos < r.end) {
    const tag = r.varint();
    const f = tag >>> 3, wire = tag & 7;
    if (f === 4) {
      expectLen(wire, "CheckResponse.dynamic_metadata");
      metadata = readStruct(r, r.lenEnd(), 0);
    } else if (f >= 1 && f <= 5) {
      expectLen(wire, `CheckResponse field ${f}`);
      const end = r.lenEnd();
      if (f === 1) code = readStatusCode(r, end);
      else {
        // a oneof: the last one on the wire wins
        const span: [number, number] = [r.pos, end];
        ok = denied = error = null;
        if (f === 2) denied = span;
        else if (f === 3) ok = span;
        else error = span;
      }
      r.pos = end;
    } else r.skip(wire);
  }
  let out: AuthzResponse;
  if (code === 0) {
    out = emptyResponse(CheckStatus.Ok, 200);
    out.dynamicMetadata = metadata;
    if (ok !== null) readOk(new ProtoReader(bytes, ok[0], ok[1]), ok[1], out);
  } else if (error !== null) {
    out = emptyResponse(CheckStatus.Error);
    readDenied(new ProtoReader(bytes, error[0], error[1]), error[1], out);
  } else {
    out = emptyResponse(CheckStatus.Denied, 403);
    if (denied !== null) readDenied(new ProtoReader(bytes, denied[0], denied[1]), denied[1], out);
  }
  if (code !== 0) out.dynamicMetadata = metadata;
  if (out.dynamicMetadata !== null && Object.keys(out.dynamicMetadata).length === 0) {
    out.dynamicMetadata = null;
  }
  return out;
}
