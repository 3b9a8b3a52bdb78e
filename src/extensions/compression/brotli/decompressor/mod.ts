/**
 * envoy.compression.brotli.decompressor: brotli decoding with Envoy's brotli_* counters and its fixed bomb bound
 * (output over 100 times a chunk's input counts brotli_output_overflow and stops the stream; input after the
 * end of the brotli stream counts brotli_redundant_input and stops it too).
 */
import { nodeZlib } from "../../../../common/node_builtin.ts";
import type { Extension } from "../../../../registry/registry.ts";
import type { Scope } from "../../../../stats/store.ts";
import { type DecompressorRules, StreamDecompressor } from "../../common/decompressor.ts";
import { NativeStream, requireNativeZlib } from "../../common/native_stream.ts";
import type {
  Decompressor,
  DecompressorFactory,
  DecompressorLibraryCreate,
  DecompressorLibraryStats,
} from "../../common/types.ts";
import { type BrotliDecompressorConfig, brotliDecompressorSchema } from "./config.ts";

/** node:zlib's constants, read when first used (not at start). */
const C = new Proxy({} as ReturnType<typeof nodeZlib>["constants"], {
  get: (_t, k) => nodeZlib().constants[k as keyof ReturnType<typeof nodeZlib>["constants"]],
});

/** The extension name. */
export const BROTLI_DECOMPRESSOR_NAME = "envoy.compression.brotli.decompressor";

/** Envoy's MaxInflateRatio of the brotli decompressor. */
const MAX_INFLATE_RATIO = 100;

const RULES: DecompressorRules = {
  get flush() {
    return C.BROTLI_OPERATION_PROCESS;
  },
  maxInflateRatio: MAX_INFLATE_RATIO,
  countError: (_s, stats) => stats.brotli_error.inc(),
  countOverflow: (stats) => {
    stats.brotli_error.inc();
    stats.brotli_output_overflow.inc();
  },
  countLeftover: (stats) => {
    stats.brotli_error.inc();
    stats.brotli_redundant_input.inc();
    return true;
  },
};

/** Brotli decoders of one config (not pooled: Deno's reset leaves a brotli stream unusable). */
export class BrotliDecompressorFactory implements DecompressorFactory {
  readonly contentEncoding = "br";
  readonly statsPrefix = "brotli.";
  readonly #params: Record<number, number>;

  constructor(c: BrotliDecompressorConfig) {
    requireNativeZlib(BROTLI_DECOMPRESSOR_NAME);
    this.#params = {
      [C.BROTLI_DECODER_PARAM_DISABLE_RING_BUFFER_REALLOCATION]: c.disable_ring_buffer_reallocation ? 1 : 0,
    };
  }

  stats(scope: Scope): DecompressorLibraryStats {
    return {
      brotli_error: scope.counter("brotli_error"),
      brotli_output_overflow: scope.counter("brotli_output_overflow"),
      brotli_redundant_input: scope.counter("brotli_redundant_input"),
    };
  }

  create(stats: DecompressorLibraryStats): Decompressor {
    const s = new NativeStream(nodeZlib().createBrotliDecompress({ params: this.#params }));
    return new StreamDecompressor(s, RULES, stats, null);
  }

  close(): void {}
}

/** The envoy.compression.brotli.decompressor extension object for the registry. */
export const brotliDecompressor: Extension<
  BrotliDecompressorConfig,
  DecompressorLibraryCreate<BrotliDecompressorConfig>
> = {
  name: BROTLI_DECOMPRESSOR_NAME,
  typeUrls: ["type.googleapis.com/envoy.extensions.compression.brotli.decompressor.v3.Brotli"],
  category: "decompressor",
  schema: brotliDecompressorSchema as never,
  create: (config) => new BrotliDecompressorFactory(config),
};
