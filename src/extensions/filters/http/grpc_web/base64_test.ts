import assert from "node:assert/strict";
import { decode, encode } from "./base64.ts";

const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array | null) => b === null ? null : new TextDecoder().decode(b);

Deno.test("base64 encode matches btoa for every tail length", () => {
  for (let n = 0; n < 70; n++) {
    const src = Uint8Array.from({ length: n }, (_, i) => (i * 37 + n) & 255);
    assert.equal(text(encode(src)), btoa(String.fromCharCode(...src)));
    assert.deepEqual(decode(encode(src)) ?? new Uint8Array(0), src);
  }
});

Deno.test("base64 decode is strict like Envoy's: length, alphabet, padding only at the end", () => {
  assert.equal(text(decode(bytes("AAAAABJncnBjLXdlYi10ZXh0LWRhdGE="))), "\0\0\0\0\x12grpc-web-text-data");
  assert.equal(decode(bytes("AAAAABJncnBjLXdlYi10ZXh0LWRhdGE")), null); // no padding: bad length
  assert.equal(decode(bytes("****")), null);
  assert.equal(decode(bytes("QQ==QQ==")), null); // padding inside
  assert.equal(decode(bytes("Q===")), null);
  assert.equal(decode(bytes("")), null);
  assert.equal(text(decode(bytes("QUI="))), "AB");
  assert.equal(text(decode(bytes("QQ=="))), "A");
});
