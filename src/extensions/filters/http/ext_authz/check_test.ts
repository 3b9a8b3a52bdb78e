/** Helpers of the check's input: UTF-8 sanitizing as Envoy's sanitizeUtf8String, address splitting. */
import assert from "node:assert/strict";
import { sanitizeHeaderValue, sanitizeUtf8, splitAddress } from "./check.ts";

Deno.test("sanitizeUtf8 keeps valid text and turns each invalid byte into '!'", () => {
  const e = new TextEncoder();
  for (const s of ["abc", "é", "€", "😀", "a€b😀c"]) assert.deepEqual(sanitizeUtf8(e.encode(s)), e.encode(s));
  const bad = new Uint8Array([0x61, 0xff, 0xc3, 0x28, 0xe2, 0x82]);
  assert.deepEqual([...sanitizeUtf8(bad)], [0x61, 0x21, 0x21, 0x28, 0x21, 0x21]);
  assert.deepEqual([...sanitizeUtf8(new Uint8Array([0xed, 0xa0, 0x80]))], [0x21, 0x21, 0x21]); // a surrogate
  // header strings hold bytes as latin1: UTF-8 bytes read back as text, others sanitized
  assert.equal(sanitizeHeaderValue("caf\u00c3\u00a9"), "café");
  assert.equal(sanitizeHeaderValue("caf\u00e9"), "caf!");
  assert.equal(sanitizeHeaderValue("plain"), "plain");
});

Deno.test("splitAddress", () => {
  assert.deepEqual(splitAddress("1.2.3.4:80"), ["1.2.3.4", 80]);
  assert.deepEqual(splitAddress("[::1]:8080"), ["::1", 8080]);
  assert.deepEqual(splitAddress(""), ["", 0]);
  assert.deepEqual(splitAddress("/tmp/sock"), ["/tmp/sock", 0]);
});
