/** envoy.compression.brotli.compressor: brotli, flushed (BROTLI_OPERATION_FLUSH) after every chunk. */
import { nodeZlib } from "../../../../common/node_builtin.ts";
import type { Extension } from "../../../../registry/registry.ts";
import { NativeStream, requireNativeZlib } from "../../common/native_stream.ts";
import type { Compressor, CompressorFactory, CompressorLibraryCreate } from "../../common/types.ts";
import { type BrotliCompressorConfig, brotliCompressorSchema } from "./config.ts";

/** node:zlib's constants, read when first used (not at start). */
const C = new Proxy({} as ReturnType<typeof nodeZlib>["constants"], {
  get: (_t, k) => nodeZlib().constants[k as keyof ReturnType<typeof nodeZlib>["constants"]],
});

/** The extension name. */
export const BROTLI_COMPRESSOR_NAME = "envoy.compression.brotli.compressor";

/** EncoderMode names to BROTLI_PARAM_MODE values (DEFAULT is brotli's default mode, generic). */
function modeValue(mode: "DEFAULT" | "GENERIC" | "TEXT" | "FONT"): number {
  switch (mode) {
    case "DEFAULT":
      return C.BROTLI_DEFAULT_MODE;
    case "GENERIC":
      return C.BROTLI_MODE_GENERIC;
    case "TEXT":
      return C.BROTLI_MODE_TEXT;
    case "FONT":
      return C.BROTLI_MODE_FONT;
  }
}

class BrotliCompressor implements Compressor {
  #s: NativeStream | null;
  constructor(s: NativeStream) {
    this.#s = s;
  }
  compress(data: Uint8Array, finish: boolean): Uint8Array {
    return this.#s!.run(data, finish ? C.BROTLI_OPERATION_FINISH : C.BROTLI_OPERATION_FLUSH);
  }
  release(): void {
    // not pooled: Deno's reset leaves a brotli stream producing nothing
    this.#s?.close();
    this.#s = null;
  }
}

/** Brotli streams of one config. */
export class BrotliCompressorFactory implements CompressorFactory {
  readonly contentEncoding = "br";
  readonly statsPrefix = "brotli.";
  readonly #params: Record<number, number>;

  constructor(c: BrotliCompressorConfig) {
    requireNativeZlib(BROTLI_COMPRESSOR_NAME);
    this.#params = {
      [C.BROTLI_PARAM_QUALITY]: c.quality,
      [C.BROTLI_PARAM_MODE]: modeValue(c.encoder_mode),
      [C.BROTLI_PARAM_LGWIN]: c.window_bits,
      [C.BROTLI_PARAM_LGBLOCK]: c.input_block_bits,
      [C.BROTLI_PARAM_DISABLE_LITERAL_CONTEXT_MODELING]: c.disable_literal_context_modeling ? 1 : 0,
    };
  }

  create(): Compressor {
    return new BrotliCompressor(new NativeStream(nodeZlib().createBrotliCompress({ params: this.#params })));
  }

  close(): void {}
}

/** The envoy.compression.brotli.compressor extension object for the registry. */
export const brotliCompressor: Extension<
  BrotliCompressorConfig,
  CompressorLibraryCreate<BrotliCompressorConfig>
> = {
  name: BROTLI_COMPRESSOR_NAME,
  typeUrls: ["type.googleapis.com/envoy.extensions.compression.brotli.compressor.v3.Brotli"],
  category: "compressor",
  schema: brotliCompressorSchema as never,
  create: (config) => new BrotliCompressorFactory(config),
};
