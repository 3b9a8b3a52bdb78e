import assert from "node:assert/strict";
import {
  type ChainCompressor,
  chooseEncoding,
  type EncodingDecision,
  HeaderStat,
} from "./accept_encoding.ts";
import { DEFAULT_CONTENT_TYPES } from "./settings.ts";

const ALL = new Set(DEFAULT_CONTENT_TYPES);
const gzip: ChainCompressor = { encoding: "gzip", chooseFirst: false, contentTypes: ALL };
const br: ChainCompressor = { encoding: "br", chooseFirst: false, contentTypes: ALL };

function decide(ae: string, chain: ChainCompressor[] = [gzip], ct = "text/html"): [string, string] {
  const d: EncodingDecision = chooseEncoding(ae, ct, chain);
  const stat = Object.entries(HeaderStat).find(([, v]) => v === d.stat)![0];
  return [d.encoding, stat];
}

Deno.test("chooseEncoding: one gzip compressor", () => {
  assert.deepEqual(decide("gzip"), ["gzip", "ValidCompressor"]);
  assert.deepEqual(decide("deflate, gzip;q=0.5, br"), ["gzip", "ValidCompressor"]);
  assert.deepEqual(decide("br"), ["identity", "NotValid"]);
  assert.deepEqual(decide(""), ["identity", "NotValid"]);
  assert.deepEqual(decide("identity"), ["identity", "Identity"]);
  assert.deepEqual(decide("gzip;q=0.5, identity"), ["identity", "Identity"]);
  assert.deepEqual(decide("gzip, identity;q=0"), ["gzip", "ValidCompressor"]);
  assert.deepEqual(decide("gzip;q=0"), ["identity", "NotValid"]);
  // the documented examples: gzip's own q=0 wins over the wildcard, and the reverse
  assert.deepEqual(decide("gzip;q=0,*;q=1"), ["identity", "NotValid"]);
  assert.deepEqual(decide("*;q=0,gzip;q=1"), ["gzip", "ValidCompressor"]);
  assert.deepEqual(decide("*"), ["gzip", "Wildcard"]);
  assert.deepEqual(decide("br, *;q=0.1"), ["gzip", "Wildcard"]);
  // names compare exactly (Envoy does not fold case), q is case-insensitive and may carry spaces
  assert.deepEqual(decide("GZIP"), ["identity", "NotValid"]);
  assert.deepEqual(decide(" gzip ; Q = 0.7 "), ["gzip", "ValidCompressor"]);
  // an unparsable q-value drops its token; another parameter leaves q at 1
  assert.deepEqual(decide("gzip;q=abc"), ["identity", "NotValid"]);
  assert.deepEqual(decide("gzip;q=0.5;level=1"), ["identity", "NotValid"]);
  assert.deepEqual(decide("gzip;level=1"), ["gzip", "ValidCompressor"]);
  assert.deepEqual(decide(",, gzip,"), ["gzip", "ValidCompressor"]);
});

Deno.test("chooseEncoding: gzip and br filters pick by q-value, ties by order or choose_first", () => {
  const chain = [gzip, br];
  assert.deepEqual(decide("gzip, br", chain), ["gzip", "ValidCompressor"]);
  assert.deepEqual(decide("br, gzip", chain), ["br", "ValidCompressor"]);
  assert.deepEqual(decide("gzip;q=0.5, br;q=0.8", chain), ["br", "ValidCompressor"]);
  assert.deepEqual(decide("gzip, br;q=0", chain), ["gzip", "ValidCompressor"]);
  assert.deepEqual(decide("*", chain), ["gzip", "Wildcard"]);
  assert.deepEqual(decide("*", [br, gzip]), ["br", "Wildcard"]);
  assert.deepEqual(decide("gzip;q=0, *", chain), ["br", "Wildcard"]);
  const brFirst = { ...br, chooseFirst: true };
  assert.deepEqual(decide("gzip, br", [gzip, brFirst]), ["br", "ValidCompressor"]);
  assert.deepEqual(decide("gzip;q=0.9, br;q=0.5", [gzip, brFirst]), ["gzip", "ValidCompressor"]);
  // a later filter with the same encoding is ignored (its choose_first too)
  assert.deepEqual(decide("br, gzip", [gzip, br, { ...gzip, chooseFirst: true }]), ["br", "ValidCompressor"]);
});

Deno.test("chooseEncoding: only compressors allowing the content type take part", () => {
  const html = { ...gzip, contentTypes: new Set(["text/html"]) };
  const js = { ...br, contentTypes: new Set(["application/javascript"]) };
  assert.deepEqual(decide("gzip;q=1, br;q=0.5", [html, js], "application/javascript"), [
    "br",
    "ValidCompressor",
  ]);
  assert.deepEqual(decide("gzip;q=1, br;q=0.5", [html, js], "text/html"), ["gzip", "ValidCompressor"]);
  assert.deepEqual(decide("gzip, br", [html, js], "image/png"), ["identity", "NotValid"]);
  // no content type: every compressor takes part
  assert.deepEqual(decide("br", [html, js], ""), ["br", "ValidCompressor"]);
});

Deno.test("chooseEncoding: std::map quirks of Envoy's wildcard pick", () => {
  // "identity" inserted by a tie (operator[]) ranks with the first registered and sorts before "zstd"
  const zstd: ChainCompressor = { encoding: "zstd", chooseFirst: false, contentTypes: ALL };
  assert.deepEqual(decide("*, identity", [zstd]), ["identity", "Wildcard"]);
  assert.deepEqual(decide("*;q=0.5, identity;q=0.5", [zstd]), ["identity", "Wildcard"]);
  assert.deepEqual(decide("*;q=0.5, identity;q=0.5", [gzip]), ["gzip", "Wildcard"]);
});
