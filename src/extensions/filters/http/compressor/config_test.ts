import assert from "node:assert/strict";
import "../../../../registry/builtin.ts";
import { compressorPerRouteSchema, compressorSchema } from "./config.ts";

const NS = "Field not supported by nuncio";
const GZIP = { "@type": "type.googleapis.com/envoy.extensions.compression.gzip.compressor.v3.Gzip" };

/** "path: message" for each issue ("" when valid). */
function errors(schema: typeof compressorSchema, input: unknown): string {
  const r = schema.safeParse(input);
  return r.success ? "" : r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("\n");
}

Deno.test("Compressor config: libraries by @type, Envoy's ranges and what nuncio lacks", () => {
  assert.equal(errors(compressorSchema, { compressor_library: { name: "gz", typed_config: GZIP } }), "");
  const full = compressorSchema.parse({
    compressor_library: {
      name: "text_optimized",
      typed_config: { ...GZIP, memory_level: 3, window_bits: 10, compression_level: "best_compression" },
    },
    response_direction_config: {
      common_config: { min_content_length: 100, content_type: ["application/json"] },
      disable_on_etag_header: true,
      uncompressible_response_codes: [206],
    },
    request_direction_config: { common_config: { enabled: { default_value: false, runtime_key: "rq" } } },
    choose_first: true,
  });
  assert.equal(full.compressor_library.name, "text_optimized");
  assert.deepEqual(full.compressor_library.config, {
    memory_level: 3,
    window_bits: 10,
    compression_level: "BEST_COMPRESSION",
    compression_strategy: "DEFAULT_STRATEGY",
    chunk_size: 4096,
  });
  assert.equal(
    errors(compressorSchema, {}),
    "compressor_library: Invalid input: expected object, received undefined",
  );
  assert.equal(
    errors(compressorSchema, { compressor_library: { typed_config: GZIP } }),
    "compressor_library.name: Invalid input: expected string, received undefined",
  );
  assert.equal(
    errors(compressorSchema, {
      compressor_library: { name: "x", typed_config: { "@type": "type.googleapis.com/acme.Lz4" } },
    }),
    'compressor_library.typed_config.@type: Unknown or unsupported compressor type "type.googleapis.com/acme.Lz4"',
  );
  assert.equal(
    errors(compressorSchema, {
      compressor_library: { name: "x", typed_config: { ...GZIP, window_bits: 16 } },
    }),
    "compressor_library.typed_config.window_bits: Too big: expected number to be <=15",
  );
  assert.equal(
    errors(compressorSchema, {
      compressor_library: { name: "x", typed_config: GZIP },
      response_direction_config: { status_header_enabled: true, uncompressible_response_codes: [199] },
    }),
    [
      "response_direction_config.uncompressible_response_codes.0: Too small: expected number to be >=200",
      `response_direction_config.status_header_enabled: ${NS}: only false (the x-envoy-compression-status header is not written)`,
    ].join("\n"),
  );
  assert.equal(
    errors(compressorSchema, {
      compressor_library: {
        name: "z",
        typed_config: {
          "@type": "type.googleapis.com/envoy.extensions.compression.zstd.compressor.v3.Zstd",
          dictionary: { inline_string: "abc" },
        },
      },
    }),
    `compressor_library.typed_config.dictionary: ${NS}`,
  );
});

Deno.test("CompressorPerRoute: disabled, overrides, and the library override nuncio lacks", () => {
  assert.deepEqual(compressorPerRouteSchema.parse({ disabled: true }), { responseEnabled: false });
  assert.deepEqual(compressorPerRouteSchema.parse({ overrides: {} }), {});
  assert.deepEqual(compressorPerRouteSchema.parse({ overrides: { response_direction_config: {} } }), {
    responseEnabled: true,
    removeAcceptEncoding: undefined,
  });
  assert.deepEqual(
    compressorPerRouteSchema.parse({
      overrides: { response_direction_config: { remove_accept_encoding_header: true } },
    }),
    { responseEnabled: true, removeAcceptEncoding: true },
  );
  assert.equal(compressorPerRouteSchema.safeParse({}).success, false);
  assert.equal(compressorPerRouteSchema.safeParse({ disabled: false }).success, false);
  const lib = compressorPerRouteSchema.safeParse({ overrides: { compressor_library: { name: "br" } } });
  assert.equal(lib.error?.issues[0].message, NS);
});
