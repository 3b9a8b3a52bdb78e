/**
 * The span buffer of a tracer on one event loop (Envoy's zipkin ReporterImpl / OpenTelemetry Tracer flush):
 * finished spans are buffered and sent when `minFlushSpans` are pending or every `flushIntervalMs` (an unref'd
 * interval: it never keeps a process alive). Sends run off the request path, one report at a time and at most
 * one per `minGapMs`: spans finished meanwhile go out in the next report, so under load reports grow instead
 * of multiplying (a report costs a write to the collector whatever its size; nuncio's departure from Envoy,
 * which posts every `min_flush_spans`). At most `maxPending` spans wait; beyond that the buffer is dropped and
 * counted (`onDropped`), so a slow or dead collector costs bounded memory and nothing on the request path.
 */

/**
 * Where a batcher keeps finished spans until a report takes them: an array by default (`ArraySpans`); a tracer
 * may encode each span as it finishes instead, so that nothing of it outlives the request.
 */
export interface SpanBuffer<T, B> {
  /** Spans buffered. */
  readonly length: number;
  /** Buffers a finished span. */
  push(span: T): void;
  /** What is buffered as one report's batch; the buffer is empty afterwards. */
  take(): B;
  /** Drops what is buffered. */
  clear(): void;
}

/** The default buffer: the spans themselves. */
export class ArraySpans<T> implements SpanBuffer<T, T[]> {
  #spans: T[] = [];
  get length(): number {
    return this.#spans.length;
  }
  push(span: T): void {
    this.#spans.push(span);
  }
  take(): T[] {
    const b = this.#spans;
    this.#spans = [];
    return b;
  }
  clear(): void {
    this.#spans = [];
  }
}

/** Options of a batcher. */
export interface BatcherOptions<T, B = T[]> {
  /** Flush when this many spans are pending (Envoy: min_flush_spans, 5). */
  readonly minFlushSpans: number;
  /** Flush at least this often, ms (Envoy: flush_interval_ms, 5000). */
  readonly flushIntervalMs: number;
  /** Sends one batch; resolves when the collector answered or the send failed. */
  readonly send: (batch: B, spans: number) => Promise<void>;
  /** Where spans wait (default: an `ArraySpans`; give one whenever B is not T[]). */
  readonly buffer?: SpanBuffer<T, B>;
  /** A timer flush ran (Envoy's timer_flushed). */
  readonly onTimerFlush?: () => void;
  /** `spans` were dropped because `maxPending` waited for a report in flight. */
  readonly onDropped?: (spans: number) => void;
  /** Spans allowed to wait (default 10 000). */
  readonly maxPending?: number;
  /** Least time between the starts of two reports, ms (default 20). */
  readonly minGapMs?: number;
}

/** Buffers finished spans and sends them in batches. */
export class SpanBatcher<T, B = T[]> {
  readonly #pending: SpanBuffer<T, B>;
  readonly #o: BatcherOptions<T, B>;
  readonly #maxPending: number;
  readonly #minGapMs: number;
  #inFlight: Promise<void> | null = null;
  /** performance.now() of the last report's start. */
  #lastStart = -Infinity;
  /** A flush waiting for the gap to pass. */
  #gapTimer: ReturnType<typeof setTimeout> | undefined;
  readonly #timer: ReturnType<typeof setInterval>;
  #closed = false;

  constructor(o: BatcherOptions<T, B>) {
    this.#o = o;
    this.#pending = o.buffer ?? (new ArraySpans<T>() as unknown as SpanBuffer<T, B>);
    this.#maxPending = o.maxPending ?? 10_000;
    this.#minGapMs = o.minGapMs ?? 20;
    this.#timer = setInterval(() => {
      this.#o.onTimerFlush?.();
      this.flush();
    }, o.flushIntervalMs);
    Deno.unrefTimer(this.#timer);
  }

  /** Spans waiting for the next report. */
  get pending(): number {
    return this.#pending.length;
  }

  /** Adds a finished span; flushes when `minFlushSpans` are pending. */
  add(span: T): void {
    if (this.#closed) return;
    const p = this.#pending;
    if (p.length >= this.#maxPending) {
      this.#o.onDropped?.(p.length);
      p.clear();
    }
    p.push(span);
    if (p.length === this.#o.minFlushSpans) this.flush();
  }

  /**
   * Sends what is pending: now, or once the report in flight ended and `minGapMs` passed since it started
   * (nothing when empty).
   */
  flush(): void {
    if (this.#pending.length === 0 || this.#inFlight !== null || this.#gapTimer !== undefined) return;
    const wait = this.#closed ? 0 : this.#lastStart + this.#minGapMs - performance.now();
    if (wait > 0) {
      this.#gapTimer = setTimeout(() => {
        this.#gapTimer = undefined;
        this.flush();
      }, wait);
      Deno.unrefTimer(this.#gapTimer);
      return;
    }
    const spans = this.#pending.length;
    const batch = this.#pending.take();
    this.#lastStart = performance.now();
    this.#inFlight = this.#o.send(batch, spans).catch(() => {}).then(() => {
      this.#inFlight = null;
      if (this.#closed || this.#pending.length >= this.#o.minFlushSpans) this.flush();
    });
  }

  /** Stops the timers, sends what is pending and waits until nothing is in flight. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    if (this.#gapTimer !== undefined) {
      clearTimeout(this.#gapTimer);
      this.#gapTimer = undefined;
    }
    this.flush();
    while (this.#inFlight !== null) await this.#inFlight;
  }
}

/** Random 32-bit words for ids, refilled from crypto.getRandomValues a pool at a time. */
const POOL = new Uint32Array(256);
let poolAt = POOL.length;
/** Char codes of the hex digits. */
const HEX = [48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 97, 98, 99, 100, 101, 102];

/** 16 random lowercase hex digits (a 64-bit span or trace id; never all zero). */
export function randomHex64(): string {
  if (poolAt + 2 > POOL.length) {
    crypto.getRandomValues(POOL);
    poolAt = 0;
  }
  const hi = POOL[poolAt++];
  const lo = POOL[poolAt++] || 1;
  return String.fromCharCode(
    HEX[hi >>> 28],
    HEX[(hi >>> 24) & 15],
    HEX[(hi >>> 20) & 15],
    HEX[(hi >>> 16) & 15],
    HEX[(hi >>> 12) & 15],
    HEX[(hi >>> 8) & 15],
    HEX[(hi >>> 4) & 15],
    HEX[hi & 15],
    HEX[lo >>> 28],
    HEX[(lo >>> 24) & 15],
    HEX[(lo >>> 20) & 15],
    HEX[(lo >>> 16) & 15],
    HEX[(lo >>> 12) & 15],
    HEX[(lo >>> 8) & 15],
    HEX[(lo >>> 4) & 15],
    HEX[lo & 15],
  );
}
