/** envoy.compression.zstd.compressor: zstd frames, flushed (ZSTD_e_flush) after every chunk. */
import { nodeZlib } from "../../../../common/node_builtin.ts";
import type { Extension } from "../../../../registry/registry.ts";
import { NativeStream, requireNativeZlib, StreamPool } from "../../common/native_stream.ts";
import type { Compressor, CompressorFactory, CompressorLibraryCreate } from "../../common/types.ts";
import { ZSTD_STRATEGIES, type ZstdCompressorConfig, zstdCompressorSchema } from "./config.ts";

/** node:zlib's constants, read when first used (not at start). */
const C = new Proxy({} as ReturnType<typeof nodeZlib>["constants"], {
  get: (_t, k) => nodeZlib().constants[k as keyof ReturnType<typeof nodeZlib>["constants"]],
});

/** The extension name. */
export const ZSTD_COMPRESSOR_NAME = "envoy.compression.zstd.compressor";

class ZstdCompressor implements Compressor {
  #s: NativeStream | null;
  constructor(readonly pool: StreamPool) {
    this.#s = pool.take();
  }
  compress(data: Uint8Array, finish: boolean): Uint8Array {
    return this.#s!.run(data, finish ? C.ZSTD_e_end : C.ZSTD_e_flush);
  }
  release(): void {
    const s = this.#s;
    this.#s = null;
    if (s !== null) this.pool.give(s);
  }
}

/** Zstd streams of one config (pooled: a finished stream is reset for the next response). */
export class ZstdCompressorFactory implements CompressorFactory {
  readonly contentEncoding = "zstd";
  readonly statsPrefix = "zstd.";
  readonly #pool: StreamPool;

  constructor(c: ZstdCompressorConfig) {
    requireNativeZlib(ZSTD_COMPRESSOR_NAME);
    if (typeof nodeZlib().createZstdCompress !== "function") {
      throw new Error(`${ZSTD_COMPRESSOR_NAME} needs zstd in node:zlib, which this runtime lacks`);
    }
    const params: Record<number, number> = {
      [C.ZSTD_c_compressionLevel]: c.compression_level,
      [C.ZSTD_c_checksumFlag]: c.enable_checksum ? 1 : 0,
    };
    const strategy = ZSTD_STRATEGIES.indexOf(c.strategy);
    if (strategy > 0) params[C.ZSTD_c_strategy] = strategy;
    this.#pool = new StreamPool(() => new NativeStream(nodeZlib().createZstdCompress({ params })));
  }

  create(): Compressor {
    return new ZstdCompressor(this.#pool);
  }

  close(): void {
    this.#pool.clear();
  }
}

/** The envoy.compression.zstd.compressor extension object for the registry. */
export const zstdCompressor: Extension<ZstdCompressorConfig, CompressorLibraryCreate<ZstdCompressorConfig>> =
  {
    name: ZSTD_COMPRESSOR_NAME,
    typeUrls: ["type.googleapis.com/envoy.extensions.compression.zstd.compressor.v3.Zstd"],
    category: "compressor",
    schema: zstdCompressorSchema as never,
    create: (config) => new ZstdCompressorFactory(config),
  };
