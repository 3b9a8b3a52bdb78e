/**
 * Drives node:zlib's native handles (zlib, brotli and zstd) synchronously, one chunk at a time, the way Node's
 * own `zlib.*Sync` functions do (`handle.writeSync` into an output buffer, `_writeState` holding what is left),
 * but without closing the handle after each call: a stream keeps its state across chunks, and a finished one can
 * be reset and pooled. Deno 2.9's node:zlib runs its "async" writes on the event loop too (measured: a 32 MiB
 * write blocks timers for its whole length), so the synchronous path costs the loop nothing more and saves the
 * Transform stream's promises, ticks and events per chunk. The work per call is bounded by the chunk the
 * connection read (at most 64 KiB of input), as in Envoy's worker threads.
 *
 * This leans on Node's internal handle API, which Deno 2.9.6 (pinned) mirrors; `nativeZlibAvailable` is checked
 * when a library is configured, and native_stream_test.ts checks the behaviour, so a runtime that moves the
 * internals fails at start-up or in the tests, never on a request.
 */
import { nodeZlib } from "../../../common/node_builtin.ts";

/** The native handle of a node:zlib stream. */
interface NativeHandle {
  writeSync(
    flush: number,
    input: Uint8Array,
    inOff: number,
    inLen: number,
    out: Uint8Array,
    outOff: number,
    outLen: number,
  ): void;
  reset(): void;
  close(): void;
  onerror: (message: string, errno: number) => void;
}

/** The internals of a node:zlib stream object used here. */
interface StreamInternals {
  _handle: NativeHandle | null;
  _writeState: Uint32Array;
}

const EMPTY = new Uint8Array(0);
/** `errno` of an error the handle threw rather than reported (zstd does). */
export const THROWN_ERROR = -1000;
/** Output scratch shared by every stream of this event loop (calls are synchronous, so never interleaved). */
const SCRATCH = new Uint8Array(64 * 1024);

/** True when this runtime's node:zlib exposes the handle internals NativeStream drives. */
export function nativeZlibAvailable(): boolean {
  const s = nodeZlib().createGzip() as unknown as Partial<StreamInternals>;
  const ok = typeof s._handle?.writeSync === "function" && s._writeState instanceof Uint32Array &&
    typeof s._handle.reset === "function";
  s._handle?.close();
  return ok;
}

/** Throws at configuration time when the runtime lacks what NativeStream needs (names the library). */
export function requireNativeZlib(library: string): void {
  if (!nativeZlibAvailable()) {
    throw new Error(`${library} needs node:zlib's native stream handles, which this runtime does not expose`);
  }
}

/** One native (de)compression stream driven synchronously. */
export class NativeStream {
  readonly #h: NativeHandle;
  readonly #st: Uint32Array;
  /** The library's error number of the first error (0 while none; THROWN_ERROR when the handle threw). */
  errno = 0;
  /** The library's message for `errno`. */
  message = "";
  /** Set when the last `run` stopped because its output passed the limit it was given. */
  overflow = false;
  /** Input bytes the last `run` left unread (a finished stream refuses more input). */
  leftover = 0;

  /** Takes over the handle of a node:zlib stream object (createGzip(), createBrotliDecompress(), ...). */
  constructor(stream: unknown) {
    const s = stream as StreamInternals;
    this.#h = s._handle!;
    this.#st = s._writeState;
    // errors are counted by the caller; the stream object must not be destroyed (and emit) on its own
    this.#h.onerror = (message: string, errno: number) => this.#fail(errno, message);
  }

  #fail(errno: number, message: string): void {
    if (this.errno !== 0) return;
    this.errno = errno === 0 ? THROWN_ERROR : errno;
    this.message = message;
  }

  /** True once an error stopped the stream (it produces nothing more). */
  get failed(): boolean {
    return this.errno !== 0;
  }

  /**
   * Runs `input` through with the library's `flush` operation and returns the bytes produced (a fresh array).
   * Stops early, with `overflow` set, once the output passes `limit` bytes (decompression bombs).
   */
  run(input: Uint8Array, flush: number, limit = Infinity): Uint8Array {
    this.overflow = false;
    this.leftover = 0;
    if (this.errno !== 0) return EMPTY;
    const h = this.#h;
    const st = this.#st;
    let inOff = 0;
    let inLen = input.length;
    let first: Uint8Array = EMPTY;
    let rest: Uint8Array[] | null = null;
    let total = 0;
    for (;;) {
      try {
        h.writeSync(flush, input, inOff, inLen, SCRATCH, 0, SCRATCH.length);
      } catch (e) {
        this.#fail(THROWN_ERROR, (e as Error).message);
        break;
      }
      const availOut = st[0];
      const availIn = st[1];
      const have = SCRATCH.length - availOut;
      if (have > 0) {
        const out = SCRATCH.slice(0, have);
        if (total === 0) first = out;
        else (rest ??= []).push(out);
        total += have;
      }
      if (this.errno !== 0) break;
      if (total > limit) {
        this.overflow = true;
        break;
      }
      if (availOut !== 0) {
        // the output was not full: the library wants more input, or it ended and left the rest unread
        this.leftover = availIn;
        break;
      }
      inOff += inLen - availIn;
      inLen = availIn;
    }
    if (rest === null) return first;
    const out = new Uint8Array(total);
    out.set(first, 0);
    let off = first.length;
    for (const p of rest) {
      out.set(p, off);
      off += p.length;
    }
    return out;
  }

  /** Back to a fresh stream with the same parameters (not for brotli: Deno's reset leaves it unusable). */
  reset(): void {
    this.#h.reset();
    this.errno = 0;
    this.message = "";
    this.overflow = false;
  }

  /** Frees the native state. */
  close(): void {
    this.#h.close();
  }
}

/**
 * A bounded pool of finished streams of one configuration, reset for reuse (creating a zlib stream costs ~10 us
 * and allocates its window and hash afresh, a reset ~1 us). Failed streams are closed instead. At most 32 are
 * kept: enough for the bodies one event loop has in flight under a 64-connection load (with 8, creating streams
 * showed in the profile), at most ~1.3 MB with Envoy's gzip defaults (8.5 MB at window_bits 15, memory_level 8).
 */
export class StreamPool {
  readonly #free: NativeStream[] = [];
  constructor(readonly make: () => NativeStream, readonly max = 32) {}

  /** A fresh stream. */
  take(): NativeStream {
    return this.#free.pop() ?? this.make();
  }

  /** Gives a stream back (reset and kept, or closed when the pool is full or the stream failed). */
  give(s: NativeStream): void {
    if (s.failed || this.#free.length >= this.max) {
      s.close();
      return;
    }
    s.reset();
    this.#free.push(s);
  }

  /** Closes every pooled stream. */
  clear(): void {
    for (const s of this.#free) s.close();
    this.#free.length = 0;
  }
}
