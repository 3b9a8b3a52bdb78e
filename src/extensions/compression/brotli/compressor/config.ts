/** Config of envoy.compression.brotli.compressor (envoy.extensions.compression.brotli.compressor.v3.Brotli). */
import { z } from "zod/mini";
import { uint32 } from "../../../../config/common.ts";
import { envoyEnum } from "../../../../config/schema_util.ts";

/** The Brotli compressor message with Envoy's defaults (quality 3, window 18, input block 24, chunk 4096). */
export const brotliCompressorSchema = z.strictObject({
  quality: z._default(uint32.check(z.maximum(11)), 3),
  encoder_mode: z._default(envoyEnum(["DEFAULT", "GENERIC", "TEXT", "FONT"]), "DEFAULT"),
  window_bits: z._default(uint32.check(z.minimum(10), z.maximum(24)), 18),
  input_block_bits: z._default(uint32.check(z.minimum(16), z.maximum(24)), 24),
  chunk_size: z._default(uint32.check(z.minimum(4096), z.maximum(65536)), 4096),
  disable_literal_context_modeling: z._default(z.boolean(), false),
});

/** The parsed Brotli compressor config. */
export type BrotliCompressorConfig = z.infer<typeof brotliCompressorSchema>;
