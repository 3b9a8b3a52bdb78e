/**
 * envoy.compression.gzip.decompressor: zlib inflate of gzip data (windowBits + 16), with Envoy's zlib_* error
 * counters and its bomb protection (more than max_inflate_ratio times a chunk's size counts zlib_data_error
 * and stops the stream).
 */
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
import { type GzipDecompressorConfig, gzipDecompressorSchema } from "./config.ts";

/** node:zlib's constants, read when first used (not at start). */
const C = new Proxy({} as ReturnType<typeof nodeZlib>["constants"], {
  get: (_t, k) => nodeZlib().constants[k as keyof ReturnType<typeof nodeZlib>["constants"]],
});

/** The extension name. */
export const GZIP_DECOMPRESSOR_NAME = "envoy.compression.gzip.decompressor";

/** Envoy's zlib decompressor counters. */
const STATS = [
  "zlib_errno",
  "zlib_stream_error",
  "zlib_data_error",
  "zlib_mem_error",
  "zlib_buf_error",
  "zlib_version_error",
] as const;

/** zlib error numbers to their counter (anything else, as a handle that threw, counts as a data error). */
let byErrno: Record<number, (typeof STATS)[number]> | undefined;
function counterOf(errno: number): (typeof STATS)[number] {
  byErrno ??= {
    [C.Z_ERRNO]: "zlib_errno",
    [C.Z_STREAM_ERROR]: "zlib_stream_error",
    [C.Z_DATA_ERROR]: "zlib_data_error",
    [C.Z_MEM_ERROR]: "zlib_mem_error",
    [C.Z_BUF_ERROR]: "zlib_buf_error",
    [C.Z_VERSION_ERROR]: "zlib_version_error",
  };
  return byErrno[errno] ?? "zlib_data_error";
}

/** Gunzip streams of one config (pooled: a finished stream is reset for the next body). */
export class GzipDecompressorFactory implements DecompressorFactory {
  readonly contentEncoding = "gzip";
  readonly statsPrefix = "gzip.";
  readonly #pool: StreamPool;
  readonly #rules: DecompressorRules;

  constructor(c: GzipDecompressorConfig) {
    requireNativeZlib(GZIP_DECOMPRESSOR_NAME);
    const opts = { windowBits: c.window_bits };
    this.#pool = new StreamPool(() => new NativeStream(nodeZlib().createGunzip(opts)));
    this.#rules = {
      flush: C.Z_NO_FLUSH,
      maxInflateRatio: c.max_inflate_ratio,
      countError: (s, stats) => stats[counterOf(s.errno)].inc(),
      countOverflow: (stats) => stats.zlib_data_error.inc(),
    };
  }

  stats(scope: Scope): DecompressorLibraryStats {
    return Object.fromEntries(STATS.map((n) => [n, scope.counter(n)]));
  }

  create(stats: DecompressorLibraryStats): Decompressor {
    return new StreamDecompressor(this.#pool.take(), this.#rules, stats, this.#pool);
  }

  close(): void {
    this.#pool.clear();
  }
}

/** The envoy.compression.gzip.decompressor extension object for the registry. */
export const gzipDecompressor: Extension<
  GzipDecompressorConfig,
  DecompressorLibraryCreate<GzipDecompressorConfig>
> = {
  name: GZIP_DECOMPRESSOR_NAME,
  typeUrls: ["type.googleapis.com/envoy.extensions.compression.gzip.decompressor.v3.Gzip"],
  category: "decompressor",
  schema: gzipDecompressorSchema as never,
  create: (config) => new GzipDecompressorFactory(config),
};
