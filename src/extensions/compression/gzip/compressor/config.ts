/** Config of envoy.compression.gzip.compressor (envoy.extensions.compression.gzip.compressor.v3.Gzip). */
import { z } from "zod/mini";
import { uint32 } from "../../../../config/common.ts";
import { envoyEnum } from "../../../../config/schema_util.ts";

/** CompressionLevel names (BEST_SPEED and BEST_COMPRESSION alias levels 1 and 9) to zlib levels. */
export const GZIP_LEVELS = {
  DEFAULT_COMPRESSION: -1,
  BEST_SPEED: 1,
  COMPRESSION_LEVEL_1: 1,
  COMPRESSION_LEVEL_2: 2,
  COMPRESSION_LEVEL_3: 3,
  COMPRESSION_LEVEL_4: 4,
  COMPRESSION_LEVEL_5: 5,
  COMPRESSION_LEVEL_6: 6,
  COMPRESSION_LEVEL_7: 7,
  COMPRESSION_LEVEL_8: 8,
  COMPRESSION_LEVEL_9: 9,
  BEST_COMPRESSION: 9,
} as const;

/** CompressionStrategy names to zlib strategies. */
export const GZIP_STRATEGIES = {
  DEFAULT_STRATEGY: 0,
  FILTERED: 1,
  HUFFMAN_ONLY: 2,
  RLE: 3,
  FIXED: 4,
} as const;

const levelNames = Object.keys(GZIP_LEVELS) as [keyof typeof GZIP_LEVELS, ...(keyof typeof GZIP_LEVELS)[]];
const strategyNames = Object.keys(GZIP_STRATEGIES) as [
  keyof typeof GZIP_STRATEGIES,
  ...(keyof typeof GZIP_STRATEGIES)[],
];

/** The Gzip compressor message with Envoy's defaults (memory level 5, window bits 12, chunk size 4096). */
export const gzipCompressorSchema = z.strictObject({
  memory_level: z._default(uint32.check(z.minimum(1), z.maximum(9)), 5),
  compression_level: z._default(envoyEnum(levelNames), "DEFAULT_COMPRESSION"),
  compression_strategy: z._default(envoyEnum(strategyNames), "DEFAULT_STRATEGY"),
  window_bits: z._default(uint32.check(z.minimum(9), z.maximum(15)), 12),
  chunk_size: z._default(uint32.check(z.minimum(4096), z.maximum(65536)), 4096),
});

/** The parsed Gzip compressor config. */
export type GzipCompressorConfig = z.infer<typeof gzipCompressorSchema>;
