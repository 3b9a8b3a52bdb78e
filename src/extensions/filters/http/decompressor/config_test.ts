import assert from "node:assert/strict";
import "../../../../registry/builtin.ts";
import { decompressorSchema } from "./config.ts";
import { addEncodingToAcceptEncoding } from "./filter.ts";

const GZIP = { "@type": "type.googleapis.com/envoy.extensions.compression.gzip.compressor.v3.Gzip" };

/** "path: message" for each issue ("" when valid). */
function errors(input: unknown): string {
  const r = decompressorSchema.safeParse(input);
  return r.success ? "" : r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("\n");
}

Deno.test("Decompressor config: the corpus form loads, the library is required", () => {
  const c = decompressorSchema.parse({
    decompressor_library: {
      name: "upload",
      typed_config: {
        "@type": "type.googleapis.com/envoy.extensions.compression.gzip.decompressor.v3.Gzip",
        window_bits: 9,
        chunk_size: 8192,
        max_inflate_ratio: 1000,
      },
    },
    response_direction_config: {
      common_config: { enabled: { default_value: false, runtime_key: "response_decompressor_enabled" } },
    },
  });
  assert.equal(c.decompressor_library.name, "upload");
  assert.equal(
    errors({ decompressor_library: { name: "x", typed_config: GZIP } }),
    'decompressor_library.typed_config.@type: Unknown or unsupported decompressor type "type.googleapis.com/envoy.extensions.compression.gzip.compressor.v3.Gzip"',
  );
});

Deno.test("addEncodingToAcceptEncoding: Envoy's cases", () => {
  assert.equal(addEncodingToAcceptEncoding("one,two", "three"), "one,two,three");
  assert.equal(addEncodingToAcceptEncoding("one,two", "one"), "two,one");
  assert.equal(addEncodingToAcceptEncoding("one;q=0.3,two", "two"), "one;q=0.3,two");
  assert.equal(addEncodingToAcceptEncoding("one;q=0.3,two", "one"), "two,one");
  assert.equal(addEncodingToAcceptEncoding("", "one"), "one");
  assert.equal(addEncodingToAcceptEncoding(" br , gzip;q=0.1 ,, deflate", "gzip"), "br,deflate,gzip");
});
