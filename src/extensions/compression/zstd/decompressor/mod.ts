/** envoy.compression.zstd.decompressor: zstd frames decoded with Envoy's zstd_* error counters. */
import { nodeZlib } from "../../../../common/node_builtin.ts";
import type { Extension } from "../../../../registry/registry.ts";
import type { Scope } from "../../../../stats/store.ts";
import { type DecompressorRules, StreamDecompressor } from "../../common/decompressor.ts";
import { NativeStream, requireNativeZlib, StreamPool } from "../../common/native_stream.ts";
import type {
  Decompressor,
  DecompressorFactory,
  DecompressorLibraryCreate,
  DecompressorLibraryStats,
} from "../../common/types.ts";
import { type ZstdDecompressorConfig, zstdDecompressorSchema } from "./config.ts";

/** The extension name. */
export const ZSTD_DECOMPRESSOR_NAME = "envoy.compression.zstd.decompressor";

/** Which counter a zstd error message goes to (zstd_generic_error for the rest). */
function errorStat(message: string): string {
  const m = message.toLowerCase();
  if (m.includes("checksum")) return "zstd_checksum_wrong_error";
  if (m.includes("dictionary")) return "zstd_dictionary_error";
  if (m.includes("allocation") || m.includes("memory")) return "zstd_memory_error";
  return "zstd_generic_error";
}

const RULES: DecompressorRules = {
  get flush() {
    return nodeZlib().constants.ZSTD_e_continue;
  },
  maxInflateRatio: 0,
  countError: (s, stats) => stats[errorStat(s.message)].inc(),
  countOverflow: (stats) => stats.zstd_generic_error.inc(),
};

/** Zstd decoders of one config (pooled: a finished stream is reset for the next body). */
export class ZstdDecompressorFactory implements DecompressorFactory {
  readonly contentEncoding = "zstd";
  readonly statsPrefix = "zstd.";
  readonly #pool: StreamPool;

  constructor(_c: ZstdDecompressorConfig) {
    requireNativeZlib(ZSTD_DECOMPRESSOR_NAME);
    if (typeof nodeZlib().createZstdDecompress !== "function") {
      throw new Error(`${ZSTD_DECOMPRESSOR_NAME} needs zstd in node:zlib, which this runtime lacks`);
    }
    this.#pool = new StreamPool(() => new NativeStream(nodeZlib().createZstdDecompress()));
  }

  stats(scope: Scope): DecompressorLibraryStats {
    return {
      zstd_generic_error: scope.counter("zstd_generic_error"),
      zstd_dictionary_error: scope.counter("zstd_dictionary_error"),
      zstd_checksum_wrong_error: scope.counter("zstd_checksum_wrong_error"),
      zstd_memory_error: scope.counter("zstd_memory_error"),
    };
  }

  create(stats: DecompressorLibraryStats): Decompressor {
    return new StreamDecompressor(this.#pool.take(), RULES, stats, this.#pool);
  }

  close(): void {
    this.#pool.clear();
  }
}

/** The envoy.compression.zstd.decompressor extension object for the registry. */
export const zstdDecompressor: Extension<
  ZstdDecompressorConfig,
  DecompressorLibraryCreate<ZstdDecompressorConfig>
> = {
  name: ZSTD_DECOMPRESSOR_NAME,
  typeUrls: ["type.googleapis.com/envoy.extensions.compression.zstd.decompressor.v3.Zstd"],
  category: "decompressor",
  schema: zstdDecompressorSchema as never,
  create: (config) => new ZstdDecompressorFactory(config),
};
