/**
 * Test support for the HTTP/2 codec: an in-memory transport, a frame splitter and a builder for crafted
 * (possibly hostile) frame sequences. Used by the unit tests; not imported by the codec.
 */
import { Flag, FrameType, PREFACE } from "./constants.ts";
import type { H2Transport } from "./core.ts";
import {
  OutBuf,
  readU32,
  writeData,
  writeGoaway,
  writePing,
  writePriority,
  writeRst,
  writeSettings,
  writeWindowUpdate,
} from "./frame.ts";
import { HpackEncoder } from "./hpack.ts";

/** A transport fed by `push` whose writes are captured. */
export class MemoryTransport implements H2Transport {
  #input: Uint8Array[] = [];
  #waiter: (() => void) | null = null;
  #eof = false;
  /** Everything written, in order. */
  readonly written: Uint8Array[] = [];
  /** True after close(). */
  closed = false;
  /** When set, writes never complete (a peer that stopped reading). */
  stalled = false;

  /** Queues bytes for the connection to read. */
  push(b: Uint8Array): void {
    this.#input.push(b);
    this.#wake();
  }

  /** Signals end of input. */
  end(): void {
    this.#eof = true;
    this.#wake();
  }

  /** Reads queued input (waits for some). */
  async read(p: Uint8Array): Promise<number | null> {
    while (this.#input.length === 0) {
      if (this.#eof || this.closed) return null;
      await new Promise<void>((r) => this.#waiter = r);
    }
    const c = this.#input[0];
    const n = Math.min(c.length, p.length);
    p.set(c.subarray(0, n));
    if (n === c.length) this.#input.shift();
    else this.#input[0] = c.subarray(n);
    return n;
  }

  /** Captures a write. */
  write(p: Uint8Array): Promise<number> {
    if (this.closed) return Promise.reject(new Error("Transport closed"));
    if (this.stalled) return new Promise(() => {});
    this.written.push(p.slice());
    return Promise.resolve(p.length);
  }

  /** Closes both directions. */
  close(): void {
    this.closed = true;
    this.#wake();
  }

  /** All bytes written so far, split into frames (after a leading preface, if any). */
  frames(): Frame[] {
    return parseFrames(concatAll(this.written));
  }

  #wake(): void {
    const w = this.#waiter;
    this.#waiter = null;
    w?.();
  }
}

/** A frame as split by parseFrames. */
export interface Frame {
  type: number;
  flags: number;
  id: number;
  payload: Uint8Array;
}

/** Concatenates byte arrays. */
export function concatAll(parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  n = 0;
  for (const p of parts) out.set(p, n), n += p.length;
  return out;
}

/** Splits bytes into frames, skipping a leading client preface. */
export function parseFrames(b: Uint8Array): Frame[] {
  let s = 0;
  if (b.length >= PREFACE.length && PREFACE.every((c, i) => b[i] === c)) s = PREFACE.length;
  const out: Frame[] = [];
  while (b.length - s >= 9) {
    const len = (b[s] << 16) | (b[s + 1] << 8) | b[s + 2];
    if (b.length - s < 9 + len) break;
    out.push({
      type: b[s + 3],
      flags: b[s + 4],
      id: readU32(b, s + 5) & 0x7fffffff,
      payload: b.slice(s + 9, s + 9 + len),
    });
    s += 9 + len;
  }
  return out;
}

/** The error code of the GOAWAY among `frames`, or -1. */
export function goawayCode(frames: Frame[]): number {
  const g = frames.find((f) => f.type === FrameType.GOAWAY);
  return g ? readU32(g.payload, 4) : -1;
}

/** Builds crafted client (or server) frame sequences. */
export class FrameBuilder {
  readonly #out = new OutBuf();
  readonly #enc = new HpackEncoder();

  /** The client preface. */
  preface(): this {
    this.#out.ensure(PREFACE.length);
    this.#out.buf.set(PREFACE, this.#out.len);
    this.#out.len += PREFACE.length;
    return this;
  }

  /** A SETTINGS frame. */
  settings(pairs: [number, number][] = []): this {
    writeSettings(this.#out, pairs.map((p) => p[0]), pairs.map((p) => p[1]));
    return this;
  }

  /** Raw frame with an arbitrary payload. */
  raw(type: number, flags: number, id: number, payload: Uint8Array = new Uint8Array(0)): this {
    this.#out.ensure(9 + payload.length);
    this.#out.header(payload.length, type, flags, id);
    this.#out.buf.set(payload, this.#out.len);
    this.#out.len += payload.length;
    return this;
  }

  /** An HPACK block for `fields` (this builder's encoder keeps its dynamic table across calls). */
  block(fields: [string, string][]): Uint8Array {
    const o = new OutBuf();
    this.#enc.begin(o);
    for (const [n, v] of fields) this.#enc.field(o, n, v);
    return o.buf.slice(0, o.len);
  }

  /** A HEADERS frame (END_HEADERS set unless `flags` says otherwise via `noEndHeaders`). */
  headers(id: number, fields: [string, string][], endStream = true, noEndHeaders = false): this {
    const flags = (endStream ? Flag.END_STREAM : 0) | (noEndHeaders ? 0 : Flag.END_HEADERS);
    return this.raw(FrameType.HEADERS, flags, id, this.block(fields));
  }

  /** A GET request on `id`. */
  get(id: number, path = "/", extra: [string, string][] = []): this {
    return this.headers(id, [
      [":method", "GET"],
      [":scheme", "http"],
      [":path", path],
      [":authority", "t"],
      ...extra,
    ]);
  }

  /** A DATA frame. */
  data(id: number, bytes: Uint8Array, endStream = false): this {
    writeData(this.#out, id, bytes, 0, bytes.length, endStream);
    return this;
  }

  /** A RST_STREAM. */
  rst(id: number, code: number): this {
    writeRst(this.#out, id, code);
    return this;
  }

  /** A PING. */
  ping(ack = false): this {
    writePing(this.#out, ack, new Uint8Array(8), 0);
    return this;
  }

  /** A PRIORITY frame. */
  priority(id: number, dependsOn = 0): this {
    writePriority(this.#out, id, dependsOn, 16);
    return this;
  }

  /** A WINDOW_UPDATE. */
  windowUpdate(id: number, inc: number): this {
    writeWindowUpdate(this.#out, id, inc);
    return this;
  }

  /** A GOAWAY. */
  goaway(last: number, code: number): this {
    writeGoaway(this.#out, last, code);
    return this;
  }

  /** Takes the bytes built so far. */
  take(): Uint8Array {
    const b = this.#out.buf.slice(0, this.#out.len);
    this.#out.clear();
    return b;
  }
}

/** Lets queued reads, microtask flushes and writes run. */
export async function settle(rounds = 3): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise((r) => setTimeout(r, 0));
}
