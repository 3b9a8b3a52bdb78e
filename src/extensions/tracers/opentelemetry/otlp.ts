/**
 * OTLP trace export encoding (opentelemetry-proto v1: ExportTraceServiceRequest, ResourceSpans, ScopeSpans,
 * Span, KeyValue with string values, Event), written by hand with the field numbers of the published
 * .proto files. Runs at flush time only.
 */

/** A finished span as the exporter needs it. */
export interface OtlpSpan {
  /** 32 hex digits. */
  traceId: string;
  /** 16 hex digits. */
  spanId: string;
  /** 16 hex digits or "". */
  parentSpanId: string;
  traceState: string;
  name: string;
  /** 2 SERVER, 3 CLIENT. */
  kind: number;
  startNs: bigint;
  endNs: bigint;
  attributes: Map<string, string>;
  events: { timeNs: bigint; name: string }[] | null;
}

const enc = new TextEncoder();

/** A growable protobuf writer (nested messages are encoded first, then framed). */
class Writer {
  #buf = new Uint8Array(256);
  #pos = 0;

  #ensure(n: number): void {
    if (this.#pos + n <= this.#buf.length) return;
    let size = this.#buf.length * 2;
    while (size < this.#pos + n) size *= 2;
    const b = new Uint8Array(size);
    b.set(this.#buf.subarray(0, this.#pos));
    this.#buf = b;
  }

  varint(n: number): void {
    this.#ensure(10);
    while (n >= 0x80) {
      this.#buf[this.#pos++] = (n & 0x7f) | 0x80;
      n = Math.floor(n / 128);
    }
    this.#buf[this.#pos++] = n;
  }

  tag(field: number, wire: number): void {
    this.varint(field * 8 + wire);
  }

  bytes(field: number, b: Uint8Array): void {
    this.tag(field, 2);
    this.varint(b.length);
    this.#ensure(b.length);
    this.#buf.set(b, this.#pos);
    this.#pos += b.length;
  }

  string(field: number, s: string): void {
    if (s !== "") this.bytes(field, enc.encode(s));
  }

  fixed64(field: number, v: bigint): void {
    this.tag(field, 1);
    this.#ensure(8);
    new DataView(this.#buf.buffer).setBigUint64(this.#pos, v, true);
    this.#pos += 8;
  }

  uint(field: number, v: number): void {
    if (v === 0) return;
    this.tag(field, 0);
    this.varint(v);
  }

  finish(): Uint8Array {
    return this.#buf.slice(0, this.#pos);
  }
}

function hexBytes(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}

function keyValue(key: string, value: string): Uint8Array {
  const any = new Writer();
  any.bytes(1, enc.encode(value)); // AnyValue.string_value (set even when empty: the oneof is present)
  const kv = new Writer();
  kv.string(1, key);
  kv.bytes(2, any.finish());
  return kv.finish();
}

function encodeSpan(s: OtlpSpan): Uint8Array {
  const w = new Writer();
  w.bytes(1, hexBytes(s.traceId));
  w.bytes(2, hexBytes(s.spanId));
  w.string(3, s.traceState);
  if (s.parentSpanId !== "") w.bytes(4, hexBytes(s.parentSpanId));
  w.string(5, s.name);
  w.uint(6, s.kind);
  w.fixed64(7, s.startNs);
  w.fixed64(8, s.endNs);
  for (const [k, v] of s.attributes) w.bytes(9, keyValue(k, v));
  for (const e of s.events ?? []) {
    const ev = new Writer();
    ev.fixed64(1, e.timeNs);
    ev.string(2, e.name);
    w.bytes(11, ev.finish());
  }
  return w.finish();
}

/**
 * An ExportTraceServiceRequest with one ResourceSpans (resource attributes `resource`) holding one ScopeSpans
 * (scope "envoy") with `spans`.
 */
export function encodeExportRequest(
  resource: readonly [string, string][],
  spans: readonly OtlpSpan[],
): Uint8Array {
  const res = new Writer();
  for (const [k, v] of resource) res.bytes(1, keyValue(k, v));
  const scope = new Writer();
  scope.string(1, "envoy");
  const ss = new Writer();
  ss.bytes(1, scope.finish());
  for (const s of spans) ss.bytes(2, encodeSpan(s));
  const rs = new Writer();
  rs.bytes(1, res.finish());
  rs.bytes(2, ss.finish());
  const req = new Writer();
  req.bytes(1, rs.finish());
  return req.finish();
}
