/** Config of envoy.compression.gzip.decompressor (envoy.extensions.compression.gzip.decompressor.v3.Gzip). */
import { z } from "zod/mini";
import { uint32 } from "../../../../config/common.ts";

/** The Gzip decompressor message with Envoy's defaults (window bits 15, chunk 4096, max inflate ratio 100). */
export const gzipDecompressorSchema = z.strictObject({
  window_bits: z._default(uint32.check(z.minimum(9), z.maximum(15)), 15),
  chunk_size: z._default(uint32.check(z.minimum(4096), z.maximum(65536)), 4096),
  max_inflate_ratio: z._default(uint32.check(z.minimum(1), z.maximum(1032)), 100),
});

/** The parsed Gzip decompressor config. */
export type GzipDecompressorConfig = z.infer<typeof gzipDecompressorSchema>;
