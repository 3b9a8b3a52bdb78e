/** Config of envoy.filters.http.decompressor (envoy.extensions.filters.http.decompressor.v3.Decompressor). */
import { z } from "zod/mini";
import { libraryRef } from "../../../compression/common/config.ts";
import { runtimeFeatureFlagSchema } from "../../common/config.ts";

/**
 * The schemas, built the first time a config uses this extension: zod objects cost every isolate (main and
 * each worker) memory, and most bootstraps never name this extension.
 */
function build() {
  /** Decompressor.CommonDirectionConfig. */
  const commonDirectionSchema = z.strictObject({
    enabled: z.optional(runtimeFeatureFlagSchema),
    ignore_no_transform_header: z._default(z.boolean(), false),
  });

  /** The Decompressor message (both directions are enabled when their config is absent). */
  const decompressorSchema = z.strictObject({
    decompressor_library: libraryRef("decompressor"),
    request_direction_config: z.optional(z.strictObject({
      common_config: z.optional(commonDirectionSchema),
      advertise_accept_encoding: z._default(z.boolean(), true),
    })),
    response_direction_config: z.optional(z.strictObject({
      common_config: z.optional(commonDirectionSchema),
    })),
  });

  return { decompressorSchema };
}

type Schemas = ReturnType<typeof build>;
let built: Schemas | undefined;
const schemas = (): Schemas => built ??= build();

/** See build(). */
export const decompressorSchema: Schemas["decompressorSchema"] = z.lazy(() =>
  schemas().decompressorSchema
) as unknown as Schemas["decompressorSchema"];

/** The parsed Decompressor config. */
export type DecompressorConfig = z.infer<Schemas["decompressorSchema"]>;
