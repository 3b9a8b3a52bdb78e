/** Config of envoy.compression.zstd.compressor (envoy.extensions.compression.zstd.compressor.v3.Zstd). */
import { z } from "zod/mini";
import { uint32 } from "../../../../config/common.ts";
import { envoyEnum, notSupportedFields } from "../../../../config/schema_util.ts";

/** Strategy names in zstd's order (DEFAULT: zstd picks by level). */
export const ZSTD_STRATEGIES = [
  "DEFAULT",
  "FAST",
  "DFAST",
  "GREEDY",
  "LAZY",
  "LAZY2",
  "BTLAZY2",
  "BTOPT",
  "BTULTRA",
  "BTULTRA2",
] as const;

/** The Zstd compressor message with Envoy's defaults (level 3, no checksum). */
export const zstdCompressorSchema = z.strictObject({
  compression_level: z._default(uint32, 3),
  enable_checksum: z._default(z.boolean(), false),
  strategy: z._default(envoyEnum(ZSTD_STRATEGIES), "DEFAULT"),
  chunk_size: z._default(uint32.check(z.minimum(4096), z.maximum(65536)), 4096),
  // node:zlib's zstd streams take no dictionary
  ...notSupportedFields(["dictionary"]),
});

/** The parsed Zstd compressor config. */
export type ZstdCompressorConfig = z.infer<typeof zstdCompressorSchema>;
