/** Config of envoy.compression.brotli.decompressor (envoy.extensions.compression.brotli.decompressor.v3.Brotli). */
import { z } from "zod/mini";
import { uint32 } from "../../../../config/common.ts";

/** The Brotli decompressor message with Envoy's defaults (chunk 4096). */
export const brotliDecompressorSchema = z.strictObject({
  disable_ring_buffer_reallocation: z._default(z.boolean(), false),
  chunk_size: z._default(uint32.check(z.minimum(4096), z.maximum(65536)), 4096),
});

/** The parsed Brotli decompressor config. */
export type BrotliDecompressorConfig = z.infer<typeof brotliDecompressorSchema>;
