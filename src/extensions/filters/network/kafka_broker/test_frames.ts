/**
 * Test support (not loaded by the filter): a seeded PRNG and an encoder that writes random but well-formed
 * Kafka requests and responses of any api_key/version from the schema table, with random tagged fields in
 * flexible versions, plus small helpers to frame bytes by hand.
 */
import { seededRandom } from "../../../../upstream/lb/lb.ts";
import {
  type ApiInfo,
  F_ARRAY,
  F_CAPTURE,
  FIELD_STRIDE,
  FIXED_WIDTH,
  K_BYTES,
  K_RECORDS,
  K_STRING,
  K_STRUCT,
  requestHeaderVersion,
  responseHeaderVersion,
  STRUCTS,
} from "./schema.ts";

/** A small seeded PRNG returning [0, 1): the project's mulberry32. */
export const prng = seededRandom;

/** A growable byte writer with Kafka's primitive encodings. */
export class Writer {
  bytes: number[] = [];
  int8(v: number): this {
    this.bytes.push(v & 0xff);
    return this;
  }
  int16(v: number): this {
    this.bytes.push((v >> 8) & 0xff, v & 0xff);
    return this;
  }
  int32(v: number): this {
    this.bytes.push((v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff);
    return this;
  }
  int64(v: number): this {
    return this.int32(Math.floor(v / 2 ** 32)).int32(v >>> 0);
  }
  uvarint(v: number): this {
    while (v >= 0x80) {
      this.bytes.push((v & 0x7f) | 0x80);
      v = Math.floor(v / 128);
    }
    this.bytes.push(v);
    return this;
  }
  raw(b: ArrayLike<number>): this {
    for (let i = 0; i < b.length; i++) this.bytes.push(b[i]);
    return this;
  }
  /** int16-length string (null: -1). */
  string(s: string | null): this {
    if (s === null) return this.int16(-1);
    const b = new TextEncoder().encode(s);
    return this.int16(b.length).raw(b);
  }
  /** Compact string (null: 0). */
  compactString(s: string | null): this {
    if (s === null) return this.uvarint(0);
    const b = new TextEncoder().encode(s);
    return this.uvarint(b.length + 1).raw(b);
  }
  u8(): Uint8Array {
    return new Uint8Array(this.bytes);
  }
}

/** Prefixes `body` with its int32 length. */
export function frame(body: Uint8Array): Uint8Array {
  return new Writer().int32(body.length).raw(body).u8();
}

/** Concatenates byte arrays. */
export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Options of the random encoder. */
export interface RandomOptions {
  /** Largest array length (default 3). */
  maxArray?: number;
  /** Largest string/bytes length (default 6). */
  maxBytes?: number;
}

function writeTags(w: Writer, rnd: () => number): void {
  const n = Math.floor(rnd() * 3);
  w.uvarint(n);
  for (let t = 0; t < n; t++) {
    const len = Math.floor(rnd() * 4);
    w.uvarint(t * 3 + 1).uvarint(len);
    for (let i = 0; i < len; i++) w.int8(Math.floor(rnd() * 256));
  }
}

function writeValue(
  w: Writer,
  kindFlags: number,
  nullable: boolean,
  sub: number,
  version: number,
  flex: boolean,
  rnd: () => number,
  o: Required<RandomOptions>,
  depth: number,
): void {
  const kind = kindFlags & 15;
  if (kindFlags & F_ARRAY) {
    if (nullable && rnd() < 0.2) {
      if (flex) w.uvarint(0);
      else w.int32(-1);
      return;
    }
    const n = depth > 4 ? 0 : Math.floor(rnd() * (o.maxArray + 1));
    if (flex) w.uvarint(n + 1);
    else w.int32(n);
    for (let i = 0; i < n; i++) writeValue(w, kind, false, sub, version, flex, rnd, o, depth + 1);
    return;
  }
  const width = FIXED_WIDTH[kind];
  if (width > 0) {
    // a captured field (Produce acks) is -1, so a response is expected
    for (let i = 0; i < width; i++) w.int8(kindFlags & F_CAPTURE ? 0xff : Math.floor(rnd() * 256));
    return;
  }
  if (kind === K_STRUCT) {
    if (nullable) {
      if (rnd() < 0.3) {
        w.int8(-1);
        return;
      }
      w.int8(1);
    }
    writeStruct(w, STRUCTS[sub], version, flex, rnd, o, depth + 1);
    return;
  }
  const isNull = nullable && rnd() < 0.2;
  const len = Math.floor(rnd() * (o.maxBytes + 1));
  if (flex && kind !== 13) {
    w.uvarint(isNull ? 0 : len + 1);
  } else if (kind === K_STRING || kind === 13) {
    w.int16(isNull ? -1 : len);
  } else if (kind === K_BYTES || kind === K_RECORDS) {
    w.int32(isNull ? -1 : len);
  }
  if (!isNull) { for (let i = 0; i < len; i++) w.int8(0x61 + Math.floor(rnd() * 26)); }
}

/** Writes a random instance of struct `fields` as `version` encodes it. */
export function writeStruct(
  w: Writer,
  fields: readonly number[],
  version: number,
  flex: boolean,
  rnd: () => number,
  o: Required<RandomOptions>,
  depth = 0,
): void {
  for (let i = 0; i < fields.length; i += FIELD_STRIDE) {
    if (version < fields[i + 1] || version > fields[i + 2]) continue;
    const nullable = version >= fields[i + 3] && version <= fields[i + 4];
    writeValue(w, fields[i], nullable, fields[i + 5], version, flex, rnd, o, depth);
  }
  if (flex) writeTags(w, rnd);
}

const DEFAULTS: Required<RandomOptions> = { maxArray: 3, maxBytes: 6 };

/** A random well-formed request frame (length, header, body) of `api` at `version`. */
export function randomRequest(
  api: ApiInfo,
  version: number,
  correlationId: number,
  rnd: () => number,
  opts: RandomOptions = {},
): Uint8Array {
  const o = { ...DEFAULTS, ...opts };
  const w = new Writer().int16(api.key).int16(version).int32(correlationId);
  const hv = requestHeaderVersion(api, version);
  if (hv >= 1) w.string(rnd() < 0.2 ? null : "client-1");
  if (hv === 2) writeTags(w, rnd);
  writeStruct(w, STRUCTS[api.requestStruct], version, hv === 2, rnd, o);
  return frame(w.u8());
}

/** A random well-formed response frame of `api` at `version`. */
export function randomResponse(
  api: ApiInfo,
  version: number,
  correlationId: number,
  rnd: () => number,
  opts: RandomOptions = {},
): Uint8Array {
  const o = { ...DEFAULTS, ...opts };
  const w = new Writer().int32(correlationId);
  if (responseHeaderVersion(api, version) === 1) writeTags(w, rnd);
  const flex = api.firstFlexibleResponse >= 0 && version >= api.firstFlexibleResponse;
  writeStruct(w, STRUCTS[api.responseStruct], version, flex, rnd, o);
  return frame(w.u8());
}
