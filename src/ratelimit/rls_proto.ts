/**
 * Protobuf codec for `envoy.service.ratelimit.v3` RateLimitRequest / RateLimitResponse (field numbers from
 * rls.proto and envoy/extensions/common/ratelimit/v3/ratelimit.proto), both directions, so the service and the
 * proxy's RLS client share it. Unknown fields are skipped; dynamic_metadata (6) and quota (7) are not decoded.
 */
import {
  lenFieldSize,
  ProtoReader,
  ProtoWriter,
  utf8Length,
  varintSize,
  WIRE_LEN,
  WIRE_VARINT,
} from "../grpc/protobuf.ts";
import type {
  CodeValue,
  CurrentLimit,
  DescriptorEntry,
  DescriptorStatus,
  HeaderValue,
  RateLimitDescriptor,
  RateLimitRequest,
  RateLimitResponse,
} from "./types.ts";

/** The RPC path of ShouldRateLimit. */
export const SHOULD_RATE_LIMIT_PATH = "/envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit";

// ---- decoding -------------------------------------------------------------------------------------------

function expectWire(wire: number, want: number, what: string): void {
  if (wire !== want) throw new RangeError(`Wrong wire type ${wire} for ${what}`);
}

function decodeEntry(r: ProtoReader, end: number): DescriptorEntry {
  const e: DescriptorEntry = { key: "", value: "" };
  const sub = new ProtoReader(r.buf, r.pos, end);
  while (sub.pos < end) {
    const tag = sub.varint();
    const field = tag >>> 3;
    if (field === 1 && (tag & 7) === WIRE_LEN) e.key = sub.string();
    else if (field === 2 && (tag & 7) === WIRE_LEN) e.value = sub.string();
    else sub.skip(tag & 7);
  }
  r.pos = end;
  return e;
}

function decodeDescriptor(r: ProtoReader, end: number): RateLimitDescriptor {
  const d: RateLimitDescriptor = { entries: [] };
  const sub = new ProtoReader(r.buf, r.pos, end);
  while (sub.pos < end) {
    const tag = sub.varint();
    const field = tag >>> 3;
    const wire = tag & 7;
    if (field === 1) {
      expectWire(wire, WIRE_LEN, "descriptor entry");
      d.entries.push(decodeEntry(sub, sub.lenEnd()));
    } else if (field === 2) {
      expectWire(wire, WIRE_LEN, "descriptor limit");
      const lend = sub.lenEnd();
      const o = { requestsPerUnit: 0, unit: 0 };
      while (sub.pos < lend) {
        const t = sub.varint();
        if (t === ((1 << 3) | WIRE_VARINT)) o.requestsPerUnit = sub.varint();
        else if (t === ((2 << 3) | WIRE_VARINT)) o.unit = sub.varint();
        else sub.skip(t & 7);
      }
      d.limit = o;
    } else if (field === 3) {
      expectWire(wire, WIRE_LEN, "descriptor hits_addend");
      const hend = sub.lenEnd();
      let v = 0;
      while (sub.pos < hend) {
        const t = sub.varint();
        if (t === ((1 << 3) | WIRE_VARINT)) v = sub.varint();
        else sub.skip(t & 7);
      }
      d.hitsAddend = v;
    } else sub.skip(wire);
  }
  r.pos = end;
  return d;
}

/** Decodes a serialized RateLimitRequest; throws RangeError on malformed bytes. */
export function decodeRateLimitRequest(buf: Uint8Array): RateLimitRequest {
  const r = new ProtoReader(buf);
  const req: RateLimitRequest = { domain: "", descriptors: [], hitsAddend: 0 };
  while (r.pos < r.end) {
    const tag = r.varint();
    const field = tag >>> 3;
    const wire = tag & 7;
    if (field === 1 && wire === WIRE_LEN) req.domain = r.string();
    else if (field === 2 && wire === WIRE_LEN) req.descriptors.push(decodeDescriptor(r, r.lenEnd()));
    else if (field === 3 && wire === WIRE_VARINT) req.hitsAddend = r.varint();
    else r.skip(wire);
  }
  return req;
}

function decodeHeaderValue(r: ProtoReader, end: number): HeaderValue {
  const h: HeaderValue = { key: "", value: "" };
  while (r.pos < end) {
    const tag = r.varint();
    const field = tag >>> 3;
    if (field === 1 && (tag & 7) === WIRE_LEN) h.key = r.string();
    else if (field === 2 && (tag & 7) === WIRE_LEN) h.value = r.string();
    else if (field === 3 && (tag & 7) === WIRE_LEN) h.value = new TextDecoder().decode(r.bytes()); // raw_value
    else r.skip(tag & 7);
  }
  return h;
}

function decodeStatus(r: ProtoReader, end: number): DescriptorStatus {
  const s: DescriptorStatus = { code: 0, limitRemaining: 0 };
  while (r.pos < end) {
    const tag = r.varint();
    const field = tag >>> 3;
    const wire = tag & 7;
    if (field === 1 && wire === WIRE_VARINT) s.code = r.varint() as CodeValue;
    else if (field === 2 && wire === WIRE_LEN) {
      const lend = r.lenEnd();
      const l: CurrentLimit = { name: "", requestsPerUnit: 0, unit: 0 };
      while (r.pos < lend) {
        const t = r.varint();
        if (t === ((1 << 3) | WIRE_VARINT)) l.requestsPerUnit = r.varint();
        else if (t === ((2 << 3) | WIRE_VARINT)) l.unit = r.varint();
        else if (t === ((3 << 3) | WIRE_LEN)) l.name = r.string();
        else r.skip(t & 7);
      }
      s.currentLimit = l;
    } else if (field === 3 && wire === WIRE_VARINT) s.limitRemaining = r.varint();
    else if (field === 4 && wire === WIRE_LEN) {
      const dend = r.lenEnd();
      let seconds = 0;
      let nanos = 0;
      while (r.pos < dend) {
        const t = r.varint();
        if (t === ((1 << 3) | WIRE_VARINT)) seconds = r.varint();
        else if (t === ((2 << 3) | WIRE_VARINT)) nanos = r.varint();
        else r.skip(t & 7);
      }
      s.durationUntilResetMs = seconds * 1000 + Math.floor(nanos / 1e6);
    } else r.skip(wire);
  }
  return s;
}

/** Decodes a serialized RateLimitResponse (the RLS client side); throws RangeError on malformed bytes. */
export function decodeRateLimitResponse(buf: Uint8Array): RateLimitResponse {
  const r = new ProtoReader(buf);
  const res: RateLimitResponse = {
    overallCode: 0,
    statuses: [],
    responseHeadersToAdd: [],
    requestHeadersToAdd: [],
  };
  while (r.pos < r.end) {
    const tag = r.varint();
    const field = tag >>> 3;
    const wire = tag & 7;
    if (field === 1 && wire === WIRE_VARINT) res.overallCode = r.varint() as CodeValue;
    else if (field === 2 && wire === WIRE_LEN) res.statuses.push(decodeStatus(r, r.lenEnd()));
    else if (field === 3 && wire === WIRE_LEN) {
      res.responseHeadersToAdd.push(decodeHeaderValue(r, r.lenEnd()));
    } else if (field === 4 && wire === WIRE_LEN) {
      res.requestHeadersToAdd.push(decodeHeaderValue(r, r.lenEnd()));
    } else if (field === 5 && wire === WIRE_LEN) res.rawBody = r.bytes();
    else r.skip(wire);
  }
  return res;
}

// ---- encoding -------------------------------------------------------------------------------------------

function strSize(s: string): number {
  return s.length === 0 ? 0 : lenFieldSize(utf8Length(s));
}

function writeStr(w: ProtoWriter, field: number, s: string): void {
  if (s.length > 0) w.stringField(field, s, utf8Length(s));
}

function uintSize(n: number): number {
  return n === 0 ? 0 : 1 + varintSize(n);
}

function writeUint(w: ProtoWriter, field: number, n: number): void {
  if (n !== 0) w.uintField(field, n);
}

function limitBodySize(l: CurrentLimit): number {
  return uintSize(l.requestsPerUnit) + uintSize(l.unit) + strSize(l.name);
}

function durationBodySize(ms: number): number {
  return uintSize(Math.floor(ms / 1000)) + uintSize((ms % 1000) * 1e6);
}

function statusBodySize(s: DescriptorStatus): number {
  let n = uintSize(s.code) + uintSize(s.limitRemaining);
  if (s.currentLimit) n += lenFieldSize(limitBodySize(s.currentLimit));
  if (s.durationUntilResetMs !== undefined) n += lenFieldSize(durationBodySize(s.durationUntilResetMs));
  return n;
}

function headerBodySize(h: HeaderValue): number {
  return strSize(h.key) + strSize(h.value);
}

/** Serializes a RateLimitResponse (proto3: zero values are omitted). */
export function encodeRateLimitResponse(res: RateLimitResponse): Uint8Array {
  let size = uintSize(res.overallCode);
  for (const s of res.statuses) size += lenFieldSize(statusBodySize(s));
  for (const h of res.responseHeadersToAdd) size += lenFieldSize(headerBodySize(h));
  for (const h of res.requestHeadersToAdd) size += lenFieldSize(headerBodySize(h));
  if (res.rawBody && res.rawBody.length > 0) size += lenFieldSize(res.rawBody.length);
  const w = new ProtoWriter(size);
  writeUint(w, 1, res.overallCode);
  for (const s of res.statuses) {
    w.beginMessage(2, statusBodySize(s));
    writeUint(w, 1, s.code);
    const l = s.currentLimit;
    if (l) {
      w.beginMessage(2, limitBodySize(l));
      writeUint(w, 1, l.requestsPerUnit);
      writeUint(w, 2, l.unit);
      writeStr(w, 3, l.name);
    }
    writeUint(w, 3, s.limitRemaining);
    const ms = s.durationUntilResetMs;
    if (ms !== undefined) {
      w.beginMessage(4, durationBodySize(ms));
      writeUint(w, 1, Math.floor(ms / 1000));
      writeUint(w, 2, (ms % 1000) * 1e6);
    }
  }
  for (const [field, list] of [[3, res.responseHeadersToAdd], [4, res.requestHeadersToAdd]] as const) {
    for (const h of list) {
      w.beginMessage(field, headerBodySize(h));
      writeStr(w, 1, h.key);
      writeStr(w, 2, h.value);
    }
  }
  if (res.rawBody && res.rawBody.length > 0) w.bytesField(5, res.rawBody);
  return w.buf;
}

function entryBodySize(e: DescriptorEntry): number {
  return strSize(e.key) + strSize(e.value);
}

function descriptorBodySize(d: RateLimitDescriptor): number {
  let n = 0;
  for (const e of d.entries) n += lenFieldSize(entryBodySize(e));
  if (d.limit) n += lenFieldSize(uintSize(d.limit.requestsPerUnit) + uintSize(d.limit.unit));
  if (d.hitsAddend !== undefined) n += lenFieldSize(uintSize(d.hitsAddend));
  return n;
}

/** Serializes a RateLimitRequest (the RLS client side). */
export function encodeRateLimitRequest(req: RateLimitRequest): Uint8Array {
  let size = strSize(req.domain) + uintSize(req.hitsAddend);
  for (const d of req.descriptors) size += lenFieldSize(descriptorBodySize(d));
  const w = new ProtoWriter(size);
  writeStr(w, 1, req.domain);
  for (const d of req.descriptors) {
    w.beginMessage(2, descriptorBodySize(d));
    for (const e of d.entries) {
      w.beginMessage(1, entryBodySize(e));
      writeStr(w, 1, e.key);
      writeStr(w, 2, e.value);
    }
    if (d.limit) {
      w.beginMessage(2, uintSize(d.limit.requestsPerUnit) + uintSize(d.limit.unit));
      writeUint(w, 1, d.limit.requestsPerUnit);
      writeUint(w, 2, d.limit.unit);
    }
    if (d.hitsAddend !== undefined) {
      w.beginMessage(3, uintSize(d.hitsAddend));
      writeUint(w, 1, d.hitsAddend);
    }
  }
  writeUint(w, 3, req.hitsAddend);
  return w.buf;
}
