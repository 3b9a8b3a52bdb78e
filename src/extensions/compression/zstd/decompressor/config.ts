/** Config of envoy.compression.zstd.decompressor (envoy.extensions.compression.zstd.decompressor.v3.Zstd). */
import { z } from "zod/mini";
import { uint32 } from "../../../../config/common.ts";
import { notSupportedFields } from "../../../../config/schema_util.ts";

/** The Zstd decompressor message with Envoy's defaults (chunk 4096). */
export const zstdDecompressorSchema = z.strictObject({
  chunk_size: z._default(uint32.check(z.minimum(4096), z.maximum(65536)), 4096),
  // node:zlib's zstd streams take no dictionary
  ...notSupportedFields(["dictionaries"]),
});

/** The parsed Zstd decompressor config. */
export type ZstdDecompressorConfig = z.infer<typeof zstdDecompressorSchema>;
