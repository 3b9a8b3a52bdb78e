/**
 * Config of envoy.filters.http.compressor (envoy.extensions.filters.http.compressor.v3.Compressor and
 * CompressorPerRoute). The deprecated top-level fields (content_length, content_type, disable_on_etag_header,
 * remove_accept_encoding_header, runtime_enabled) still apply when response_direction_config is absent, as in
 * Envoy.
 */
import { z } from "zod/mini";
import { uint32 } from "../../../../config/common.ts";
import { notSupportedFields, onlyValues } from "../../../../config/schema_util.ts";
import { libraryRef } from "../../../compression/common/config.ts";
import { runtimeFeatureFlagSchema } from "../../common/config.ts";

/**
 * The schemas, built the first time a config uses this extension: zod objects cost every isolate (main and
 * each worker) memory, and most bootstraps never name this extension.
 */
function build() {
  /** Compressor.CommonDirectionConfig. */
  const commonDirectionSchema = z.strictObject({
    enabled: z.optional(runtimeFeatureFlagSchema),
    min_content_length: z.optional(uint32),
    content_type: z._default(z.array(z.string()), []),
  });

  /** The Compressor message. */
  const compressorSchema = z.strictObject({
    content_length: z.optional(uint32),
    content_type: z._default(z.array(z.string()), []),
    disable_on_etag_header: z._default(z.boolean(), false),
    remove_accept_encoding_header: z._default(z.boolean(), false),
    runtime_enabled: z.optional(runtimeFeatureFlagSchema),
    compressor_library: libraryRef("compressor"),
    request_direction_config: z.optional(
      z.strictObject({ common_config: z.optional(commonDirectionSchema) }),
    ),
    response_direction_config: z.optional(z.strictObject({
      common_config: z.optional(commonDirectionSchema),
      disable_on_etag_header: z._default(z.boolean(), false),
      remove_accept_encoding_header: z._default(z.boolean(), false),
      uncompressible_response_codes: z._default(
        z.array(uint32.check(z.minimum(200), z.maximum(599))).check(z.refine(
          (codes) => new Set(codes).size === codes.length,
          { message: "Values must be unique" },
        )),
        [],
      ),
      status_header_enabled: onlyValues([false], "the x-envoy-compression-status header is not written"),
    })),
    choose_first: z._default(z.boolean(), false),
  });

  /** The CompressorPerRoute message (exactly one of `disabled: true` or `overrides`), parsed to its settings. */
  const compressorPerRouteSchema = z.pipe(
    z.strictObject({
      disabled: z.optional(z.literal(true)),
      overrides: z.optional(z.strictObject({
        response_direction_config: z.optional(z.strictObject({
          remove_accept_encoding_header: z.optional(z.boolean()),
        })),
        ...notSupportedFields(["compressor_library"]),
      })),
    }).check(z.refine((v) => (v.disabled !== undefined) !== (v.overrides !== undefined), {
      message: "Exactly one of disabled, overrides must be set",
    })),
    z.transform((v): CompressorRouteSettings => {
      if (v.disabled) return { responseEnabled: false };
      const r = v.overrides?.response_direction_config;
      return r === undefined
        ? {}
        : { responseEnabled: true, removeAcceptEncoding: r.remove_accept_encoding_header };
    }),
  );

  return { compressorSchema, compressorPerRouteSchema };
}

type Schemas = ReturnType<typeof build>;
let built: Schemas | undefined;
const schemas = (): Schemas => built ??= build();

/** See build(). */
export const compressorSchema: Schemas["compressorSchema"] = z.lazy(() =>
  schemas().compressorSchema
) as unknown as Schemas["compressorSchema"];

/** See build(). */
export const compressorPerRouteSchema: Schemas["compressorPerRouteSchema"] = z.lazy(() =>
  schemas().compressorPerRouteSchema
) as unknown as Schemas["compressorPerRouteSchema"];

/** The parsed Compressor config. */
export type CompressorConfig = z.infer<Schemas["compressorSchema"]>;

/** What a CompressorPerRoute says: undefined fields leave the filter's setting. */
export interface CompressorRouteSettings {
  /** False for `disabled`, true when `overrides.response_direction_config` is present. */
  readonly responseEnabled?: boolean;
  /** overrides.response_direction_config.remove_accept_encoding_header. */
  readonly removeAcceptEncoding?: boolean;
}
