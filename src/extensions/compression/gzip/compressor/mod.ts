/** envoy.compression.gzip.compressor: zlib deflate with a gzip wrapper, flushed (Z_SYNC_FLUSH) after every chunk. */
import { nodeZlib } from "../../../../common/node_builtin.ts";
import type { Extension } from "../../../../registry/registry.ts";
import { NativeStream, requireNativeZlib, StreamPool } from "../../common/native_stream.ts";
import type { Compressor, CompressorFactory, CompressorLibraryCreate } from "../../common/types.ts";
import { GZIP_LEVELS, GZIP_STRATEGIES, type GzipCompressorConfig, gzipCompressorSchema } from "./config.ts";

// nodeZlib().h flush values (fixed by zlib; reading nodeZlib().constants here would load node:zlib at start)
const Z_SYNC_FLUSH = 2;
const Z_FINISH = 4;

/** The extension name. */
export const GZIP_COMPRESSOR_NAME = "envoy.compression.gzip.compressor";

class GzipCompressor implements Compressor {
  #s: NativeStream | null;
  constructor(readonly pool: StreamPool) {
    this.#s = pool.take();
  }
  compress(data: Uint8Array, finish: boolean): Uint8Array {
    return this.#s!.run(data, finish ? Z_FINISH : Z_SYNC_FLUSH);
  }
  release(): void {
    const s = this.#s;
    this.#s = null;
    if (s !== null) this.pool.give(s);
  }
}

/** Gzip streams of one config (pooled: a finished stream is reset for the next response). */
export class GzipCompressorFactory implements CompressorFactory {
  readonly contentEncoding = "gzip";
  readonly statsPrefix = "gzip.";
  readonly #pool: StreamPool;

  constructor(c: GzipCompressorConfig) {
    requireNativeZlib(GZIP_COMPRESSOR_NAME);
    const opts = {
      level: GZIP_LEVELS[c.compression_level],
      memLevel: c.memory_level,
      windowBits: c.window_bits,
      strategy: GZIP_STRATEGIES[c.compression_strategy],
    };
    this.#pool = new StreamPool(() => new NativeStream(nodeZlib().createGzip(opts)));
  }

  create(): Compressor {
    return new GzipCompressor(this.#pool);
  }

  close(): void {
    this.#pool.clear();
  }
}

/** The envoy.compression.gzip.compressor extension object for the registry. */
export const gzipCompressor: Extension<GzipCompressorConfig, CompressorLibraryCreate<GzipCompressorConfig>> =
  {
    name: GZIP_COMPRESSOR_NAME,
    typeUrls: ["type.googleapis.com/envoy.extensions.compression.gzip.compressor.v3.Gzip"],
    category: "compressor",
    schema: gzipCompressorSchema as never,
    create: (config) => new GzipCompressorFactory(config),
  };
