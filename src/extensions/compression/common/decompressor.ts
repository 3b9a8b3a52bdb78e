/**
 * The decompressor shared by the gzip, brotli and zstd libraries: a NativeStream fed one chunk at a time, with
 * Envoy's bomb protection (output over `maxInflateRatio` times a chunk's input stops the stream) and the
 * library's error counters. Once stopped it produces nothing more.
 */
import type { NativeStream, StreamPool } from "./native_stream.ts";
import type { Decompressor, DecompressorLibraryStats } from "./types.ts";

const EMPTY = new Uint8Array(0);

/** How one library reads its stream's outcome. */
export interface DecompressorRules {
  /** The flush operation of every write. */
  readonly flush: number;
  /** Output bound per chunk as a multiple of its input (0: none). */
  readonly maxInflateRatio: number;
  /** Counts the error the stream stopped on (its `errno` and `message` are set). */
  countError(s: NativeStream, stats: DecompressorLibraryStats): void;
  /** Counts an output over the inflate ratio. */
  countOverflow(stats: DecompressorLibraryStats): void;
  /** Counts input left unread after the end of the compressed stream; true when that stops the stream. */
  countLeftover?(stats: DecompressorLibraryStats): boolean;
}

/** One stream's decompressor over a NativeStream (from `pool` when given, given back on release). */
export class StreamDecompressor implements Decompressor {
  #s: NativeStream | null;
  #stopped = false;

  constructor(
    s: NativeStream,
    readonly rules: DecompressorRules,
    readonly stats: DecompressorLibraryStats,
    readonly pool: StreamPool | null,
  ) {
    this.#s = s;
  }

  decompress(data: Uint8Array): Uint8Array {
    const s = this.#s;
    if (s === null || this.#stopped || data.length === 0) return EMPTY;
    const r = this.rules;
    const limit = r.maxInflateRatio > 0 ? r.maxInflateRatio * data.length : Infinity;
    const out = s.run(data, r.flush, limit);
    if (s.failed) {
      this.#stopped = true;
      r.countError(s, this.stats);
    } else if (s.overflow) {
      this.#stopped = true;
      r.countOverflow(this.stats);
    } else if (s.leftover > 0 && r.countLeftover?.(this.stats)) {
      this.#stopped = true;
    }
    return out;
  }

  release(): void {
    const s = this.#s;
    this.#s = null;
    if (s === null) return;
    if (this.pool !== null && !this.#stopped) this.pool.give(s);
    else s.close();
  }
}
