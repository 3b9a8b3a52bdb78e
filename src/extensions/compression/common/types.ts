/**
 * The compression library contracts (Envoy's envoy/compression/{compressor,decompressor}): a library extension
 * (category "compressor" or "decompressor", e.g. envoy.compression.gzip.compressor) builds a factory once per
 * filter config; the compressor and decompressor HTTP filters make one (de)compressor per stream from it.
 * Everything runs synchronously on the event loop, one chunk at a time, as in Envoy's worker threads.
 */
import type { Counter, Scope } from "../../../stats/store.ts";

/** One stream's compressor. */
export interface Compressor {
  /**
   * Compresses `data` and flushes what it produced (Envoy's Flush state), or ends the stream when `finish`
   * (Finish). Returns the bytes produced: a fresh array the caller owns (possibly empty).
   */
  compress(data: Uint8Array, finish: boolean): Uint8Array;
  /** The stream is over (finished or not): the native state goes back to a pool or is freed. Called once. */
  release(): void;
}

/** What a compressor library builds once per filter config. */
export interface CompressorFactory {
  /** The content-coding it produces ("gzip", "br", "zstd"), matched against accept-encoding. */
  readonly contentEncoding: string;
  /** Its part of the filter's stat names, with the trailing dot ("gzip.", "brotli.", "zstd."). */
  readonly statsPrefix: string;
  /** A compressor for one stream. */
  create(): Compressor;
  /** The filter config is retired: pooled native state is freed. */
  close(): void;
}

/** The `create` of a compressor library extension. */
export type CompressorLibraryCreate<C> = (config: C) => CompressorFactory;

/** One stream's decompressor. */
export interface Decompressor {
  /**
   * Decompresses `data` (one chunk of the stream); returns the bytes produced, a fresh array the caller owns.
   * After an error or an inflate ratio over the library's bound, it counts the library stat and produces
   * nothing more (the rest of the body is dropped, as Envoy's decompressors stop).
   */
  decompress(data: Uint8Array): Uint8Array;
  /** The stream is over: the native state goes back to a pool or is freed. Called once. */
  release(): void;
}

/** What a decompressor library builds once per filter config. */
export interface DecompressorFactory {
  /** The content-coding it reads ("gzip", "br", "zstd"). */
  readonly contentEncoding: string;
  /** Its part of the filter's stat names, with the trailing dot. */
  readonly statsPrefix: string;
  /** The library's own counters under `scope` (the filter's `...decompressor_library.`); once per filter config. */
  stats(scope: Scope): DecompressorLibraryStats;
  /** A decompressor for one stream counting into `stats`. */
  create(stats: DecompressorLibraryStats): Decompressor;
  /** The filter config is retired: pooled native state is freed. */
  close(): void;
}

/** A decompressor library's error counters by Envoy name (zlib_data_error, brotli_error, ...). */
export type DecompressorLibraryStats = Readonly<Record<string, Counter>>;

/** The `create` of a decompressor library extension. */
export type DecompressorLibraryCreate<C> = (config: C) => DecompressorFactory;
