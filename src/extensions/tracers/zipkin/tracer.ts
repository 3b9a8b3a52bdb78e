/**
 * envoy.tracers.zipkin: B3 context extraction (multi-header `x-b3-*` and single `b3`) and injection
 * (multi-header, as Envoy), Zipkin v2 spans (kind, shared server spans), and a per-event-loop reporter posting
 * JSON batches to `collector_endpoint` on `collector_cluster` with Envoy's `tracing.zipkin.*` stats.
 */
import { randomHex64, SpanBatcher, type SpanBuffer } from "../../../tracing/batcher.ts";
import { COLLECTOR_HEAD_ROOM, postToCollector } from "../../../tracing/collector_http.ts";
import { asciiBytes, JsonBytes, putBytes, putRaw, putStr, RepeatCache } from "../../../tracing/json_bytes.ts";
import type { Span, SpanStart, TracerDriver } from "../../../tracing/types.ts";
import type { HeaderMap } from "../../../http/headers.ts";
import type { FactoryContext } from "../../../network/filter.ts";
import type { Counter } from "../../../stats/store.ts";
import type { ZipkinConfig } from "./config.ts";

/** A B3 context read from request headers. */
export interface B3Context {
  traceId: string;
  spanId: string;
  parentId: string;
  sampled: boolean;
}

const HEX = /^[0-9a-fA-F]+$/;

/** Whether `h` has a `b3` or `x-b3-*` line: one pass over the names (most requests carry none). */
function hasB3(h: HeaderMap): boolean {
  const names = h.names;
  for (let i = 0; i < names.length; i++) {
    const n = names[i];
    const c = n.charCodeAt(0);
    if (c === 98 ? n === "b3" : c === 120 && n.charCodeAt(2) === 98 && n.startsWith("x-b3-")) return true;
  }
  return false;
}

function validFlag(c: string): boolean {
  return c === "0" || c === "1" || c === "d";
}

/**
 * The sampling decision B3 headers carry (Envoy's extractSampled): the `b3` flag, else `x-b3-sampled`
 * ("1" or "true"), else `traced`.
 */
export function extractSampled(h: HeaderMap, traced: boolean): boolean {
  const b3 = h.get("b3");
  if (b3 !== undefined) {
    const pos = b3.length === 1
      ? 0
      : b3.length === 35 || b3.length === 52
      ? 34
      : b3.length === 51 || b3.length === 68
      ? 50
      : -1;
    if (pos < 0 || !validFlag(b3[pos])) return traced;
    return b3[pos] !== "0";
  }
  const s = h.get("x-b3-sampled");
  if (s === undefined) return traced;
  return s === "1" || s === "true";
}

/**
 * The incoming context (Envoy's extractSpanContext): `b3` first, then `x-b3-traceid` + `x-b3-spanid`
 * (+ `x-b3-parentspanid`). null: none present; "invalid": present but malformed (Envoy then does not trace).
 */
export function extractContext(h: HeaderMap, sampled: boolean): B3Context | null | "invalid" {
  const b3 = h.get("b3");
  if (b3 !== undefined) return parseB3Single(b3, sampled);
  const tid = h.get("x-b3-traceid");
  const sid = h.get("x-b3-spanid");
  if (tid === undefined || sid === undefined) return null;
  if (!isHex(tid, 16) && !isHex(tid, 32)) return "invalid";
  if (!isHexUpTo(sid, 16)) return "invalid";
  const pid = h.get("x-b3-parentspanid") ?? "";
  if (pid !== "" && !isHexUpTo(pid, 16)) return "invalid";
  return { traceId: tid.toLowerCase(), spanId: pad16(sid), parentId: pid === "" ? "" : pad16(pid), sampled };
}

function parseB3Single(b3: string, sampled: boolean): B3Context | null | "invalid" {
  if (b3.length === 1) return validFlag(b3) ? null : "invalid";
  const parts = b3.split("-");
  if (parts.length < 2 || parts.length > 4) return "invalid";
  const [tid, sid, flag, pid] = parts;
  if (!isHex(tid, 16) && !isHex(tid, 32)) return "invalid";
  if (!isHex(sid, 16)) return "invalid";
  if (flag !== undefined && !validFlag(flag)) return "invalid";
  if (pid !== undefined && !isHex(pid, 16)) return "invalid";
  return {
    traceId: tid.toLowerCase(),
    spanId: sid.toLowerCase(),
    parentId: pid?.toLowerCase() ?? "",
    sampled,
  };
}

function isHex(s: string, len: number): boolean {
  return s.length === len && HEX.test(s);
}

function isHexUpTo(s: string, len: number): boolean {
  return s.length > 0 && s.length <= len && HEX.test(s);
}

function pad16(s: string): string {
  return s.toLowerCase().padStart(16, "0");
}

/** Envoy's `tracing.zipkin.` counters. */
class ZipkinStats {
  readonly spans_sent: Counter;
  readonly timer_flushed: Counter;
  readonly reports_skipped_no_cluster: Counter;
  readonly reports_sent: Counter;
  readonly reports_dropped: Counter;
  readonly reports_failed: Counter;
  constructor(ctx: FactoryContext) {
    const s = ctx.stats.scope("tracing.zipkin");
    this.spans_sent = s.counter("spans_sent");
    this.timer_flushed = s.counter("timer_flushed");
    this.reports_skipped_no_cluster = s.counter("reports_skipped_no_cluster");
    this.reports_sent = s.counter("reports_sent");
    this.reports_dropped = s.counter("reports_dropped");
    this.reports_failed = s.counter("reports_failed");
  }
}

/** A Zipkin v2 span (sampled; unsampled requests use NOT_SAMPLED). */
export class ZipkinSpan implements Span {
  readonly sampled = true;
  /** Tag names and values (parallel arrays: cheaper to fill and to write than an object). */
  readonly tagNames: string[] = [];
  readonly tagValues: string[] = [];
  annotations: { timestamp: number; value: string }[] | null = null;
  /** Duration in µs once finished. */
  duration = 0;
  #done = false;
  /** Bit `length & 31` of every tag name held: a name whose bit is clear is new, no search needed. */
  #nameLengths = 0;

  constructor(
    readonly driver: ZipkinDriver,
    readonly traceId: string,
    readonly id: string,
    readonly parentId: string,
    public name: string,
    readonly kind: "SERVER" | "CLIENT",
    /** Start, µs since epoch. */
    readonly timestamp: number,
    /** A server span sharing its id with the caller's client span. */
    readonly shared: boolean,
  ) {}

  setTag(name: string, value: string): void {
    const names = this.tagNames;
    const bit = 1 << (name.length & 31);
    if ((this.#nameLengths & bit) !== 0) {
      for (let i = 0; i < names.length; i++) {
        if (names[i] === name) {
          this.tagValues[i] = value;
          return;
        }
      }
    } else this.#nameLengths |= bit;
    names.push(name);
    this.tagValues.push(value);
  }

  /** The tags as an object (tests). */
  get tags(): Record<string, string> {
    return Object.fromEntries(this.tagNames.map((n, i) => [n, this.tagValues[i]]));
  }

  setOperation(name: string): void {
    this.name = name;
  }

  log(atMs: number, event: string): void {
    (this.annotations ??= []).push({ timestamp: Math.round(atMs * 1000), value: event });
  }

  injectContext(h: HeaderMap): void {
    if (!hasB3(h)) {
      // nothing to replace or remove: append (what set does then, without a search per name)
      h.addLower("x-b3-traceid", this.traceId);
      h.addLower("x-b3-spanid", this.id);
      if (this.parentId !== "") h.addLower("x-b3-parentspanid", this.parentId);
      h.addLower("x-b3-sampled", "1");
      return;
    }
    h.set("x-b3-traceid", this.traceId);
    h.set("x-b3-spanid", this.id);
    if (this.parentId !== "") h.set("x-b3-parentspanid", this.parentId);
    else if (h.has("x-b3-parentspanid")) h.remove("x-b3-parentspanid");
    h.set("x-b3-sampled", "1");
    // a single-header context from downstream would shadow ours at the next hop
    if (h.has("b3")) h.remove("b3");
  }

  spawnChild(name: string, startMs: number): Span {
    return new ZipkinSpan(
      this.driver,
      this.traceId,
      randomHex64(),
      this.id,
      name,
      "CLIENT",
      Math.round(startMs * 1000),
      false,
    );
  }

  finish(endMs: number): void {
    if (this.#done) return;
    this.#done = true;
    this.duration = Math.max(1, Math.round(endMs * 1000) - this.timestamp);
    this.driver.report(this);
  }

  /** The Zipkin v2 JSON object (as `write` serializes it). */
  plain(): Record<string, unknown> {
    const w = new JsonBytes();
    this.write(w, new RepeatCache());
    return JSON.parse(new TextDecoder().decode(w.bytes()));
  }

  /**
   * Writes the Zipkin v2 JSON object: room reserved once, the position kept in a local, constant parts copied as
   * bytes, the name and tags through `cache` (the previous span's strings at the same positions).
   */
  write(w: JsonBytes, cache: RepeatCache): void {
    const names = this.tagNames, values = this.tagValues, a = this.annotations;
    const endpoint = this.driver.endpointJson;
    // ids are hex (generated or validated), numbers at most 17 bytes; strings at most 6 bytes a unit
    let room = 256 + endpoint.length + 6 * this.name.length + this.traceId.length + this.parentId.length;
    for (let i = 0; i < names.length; i++) room += 6 * (names[i].length + values[i].length) + 6;
    if (a !== null) { for (let i = 0; i < a.length; i++) room += 64 + 6 * a[i].value.length; }
    const b = w.reserve(room);
    let p = putBytes(b, w.pos, K_TRACE_ID);
    p = putRaw(b, p, this.traceId);
    if (this.parentId !== "") {
      p = putBytes(b, p, K_PARENT_ID);
      p = putRaw(b, p, this.parentId);
    }
    p = putBytes(b, p, K_ID);
    p = putRaw(b, p, this.id);
    p = putBytes(b, p, this.kind === "SERVER" ? K_SERVER_NAME : K_CLIENT_NAME);
    p = cache.put(b, p, 0, this.name);
    p = putBytes(b, p, K_TIMESTAMP);
    p = putRaw(b, p, String(this.timestamp));
    p = putBytes(b, p, K_DURATION);
    p = putRaw(b, p, String(this.duration));
    p = putBytes(b, p, endpoint);
    if (this.shared) p = putBytes(b, p, K_SHARED);
    if (a !== null) {
      p = putRaw(b, p, ',"annotations":[');
      for (let i = 0; i < a.length; i++) {
        p = putRaw(b, p, i === 0 ? '{"timestamp":' : ',{"timestamp":');
        p = putRaw(b, p, String(a[i].timestamp));
        p = putRaw(b, p, ',"value":');
        p = putStr(b, p, a[i].value);
        b[p++] = 125; // }
      }
      b[p++] = 93; // ]
    }
    p = putBytes(b, p, K_TAGS);
    for (let i = 0; i < names.length; i++) {
      if (i > 0) b[p++] = 44; // ,
      p = cache.put(b, p, 2 * i + 1, names[i]);
      b[p++] = 58; // :
      p = cache.put(b, p, 2 * i + 2, values[i]);
    }
    b[p++] = 125;
    b[p++] = 125;
    w.pos = p;
  }
}

const K_TRACE_ID = asciiBytes('{"traceId":"');
const K_PARENT_ID = asciiBytes('","parentId":"');
const K_ID = asciiBytes('","id":"');
const K_SERVER_NAME = asciiBytes('","kind":"SERVER","name":');
const K_CLIENT_NAME = asciiBytes('","kind":"CLIENT","name":');
const K_TIMESTAMP = asciiBytes(',"timestamp":');
const K_DURATION = asciiBytes(',"duration":');
const K_SHARED = asciiBytes(',"shared":true');
const K_TAGS = asciiBytes(',"tags":{');

/** The span of a request not sampled: propagates "not sampled" and records nothing (shared, stateless). */
const NOT_SAMPLED: Span = {
  sampled: false,
  setTag() {},
  setOperation() {},
  log() {},
  injectContext(h: HeaderMap): void {
    h.set("x-b3-sampled", "0");
  },
  spawnChild(): Span {
    return NOT_SAMPLED;
  },
  finish() {},
};

/**
 * A driver's report buffer: each span is written as JSON when it finishes, so nothing of it outlives its
 * request; `take` closes the array and hands over the bytes. Two writers alternate: one fills while the other's
 * bytes are in flight (the batcher takes again only once that report ended). Both leave room in front for the
 * request head.
 */
class SpanJson implements SpanBuffer<ZipkinSpan, Uint8Array> {
  length = 0;
  #w = new JsonBytes(16 * 1024, COLLECTOR_HEAD_ROOM);
  #other = new JsonBytes(16 * 1024, COLLECTOR_HEAD_ROOM);
  readonly #cache = new RepeatCache();

  push(span: ZipkinSpan): void {
    const w = this.#w;
    w.reserve(1)[w.pos++] = this.length === 0 ? 91 : 44; // [ or ,
    span.write(w, this.#cache);
    this.length++;
  }

  take(): Uint8Array {
    const w = this.#w;
    w.raw("]");
    this.#w = this.#other;
    this.#w.reset();
    this.#other = w;
    this.length = 0;
    return w.bytes();
  }

  clear(): void {
    this.#w.reset();
    this.length = 0;
  }
}

/** One Zipkin tracer per config and event loop. */
export class ZipkinDriver implements TracerDriver {
  readonly stats: ZipkinStats;
  readonly localEndpoint: { serviceName: string };
  /** `,"localEndpoint":{...}` as JSON bytes (the same in every span). */
  readonly endpointJson: Uint8Array;

  readonly #batcher: SpanBatcher<ZipkinSpan, Uint8Array>;
  readonly #config: ZipkinConfig;

  constructor(config: ZipkinConfig, readonly ctx: FactoryContext, opts?: { flushIntervalMs?: number }) {
    this.#config = config;
    this.stats = new ZipkinStats(ctx);
    this.localEndpoint = { serviceName: ctx.node.cluster };
    const ep = new JsonBytes(64);
    ep.raw(',"localEndpoint":{"serviceName":');
    ep.str(this.localEndpoint.serviceName);
    ep.raw("}");
    this.endpointJson = ep.bytes().slice();

    this.#batcher = new SpanBatcher<ZipkinSpan, Uint8Array>({
      minFlushSpans: 5,
      flushIntervalMs: opts?.flushIntervalMs ?? 5000,
      buffer: new SpanJson(),
      send: (body, spans) => this.#send(body, spans),
      onTimerFlush: () => this.stats.timer_flushed.inc(),
      onDropped: () => this.stats.reports_dropped.inc(),
    });
  }

  startSpan(s: SpanStart): Span | null {
    const h = s.headers;
    const b3 = hasB3(h);
    const sampled = b3 ? extractSampled(h, s.traced) : s.traced;
    const ctx = b3 ? extractContext(h, sampled) : null;
    if (ctx === "invalid") return null;
    if (!sampled) return NOT_SAMPLED;
    const startUs = Math.round(s.startMs * 1000);
    // Envoy's zipkin names the span after the host (the decorator renames it); egress spans are client spans
    const kind = s.egress ? "CLIENT" : "SERVER";
    if (ctx === null) {
      const low = randomHex64();
      const traceId = this.#config.trace_id_128bit ? randomHex64() + low : low;
      return new ZipkinSpan(this, traceId, low, "", s.authority, kind, startUs, false);
    }
    // ingress: share the caller's span id (shared_span_context) unless Envoy is its own hop
    const share = !s.egress && this.#config.shared_span_context && !s.spawnUpstreamSpan &&
      !this.#config.split_spans_for_request;
    if (share) {
      return new ZipkinSpan(
        this,
        ctx.traceId,
        ctx.spanId,
        ctx.parentId,
        s.authority,
        "SERVER",
        startUs,
        true,
      );
    }
    return new ZipkinSpan(this, ctx.traceId, randomHex64(), ctx.spanId, s.authority, kind, startUs, false);
  }

  /** A sampled span finished: buffered for the next report. */
  report(span: ZipkinSpan): void {
    this.#batcher.add(span);
  }

  async #send(body: Uint8Array, spans: number): Promise<void> {
    const c = this.#config;
    const stats = this.stats;
    stats.spans_sent.inc(spans);
    const status = await postToCollector(this.ctx.clusterManager, {
      cluster: c.collector_cluster,
      path: c.collector_endpoint,
      authority: c.collector_hostname || c.collector_cluster,
      contentType: "application/json",
      body,
      headRoom: COLLECTOR_HEAD_ROOM,
      timeoutMs: 5000,
    });
    if (status === -1) stats.reports_skipped_no_cluster.inc();
    else if (status === 0) stats.reports_failed.inc();
    else if (status === 202) stats.reports_sent.inc();
    else stats.reports_dropped.inc();
  }

  close(): Promise<void> {
    return this.#batcher.close();
  }
}
