import assert from "node:assert/strict";
import { z } from "zod/mini";
import { double, envoyEnum, integer } from "./schema_util.ts";

const messages = (r: { success: boolean; error?: { issues: { message: string }[] } }) =>
  r.error?.issues.map((i) => i.message);

Deno.test("integer accepts a JSON integer or a decimal string and keeps range checks", () => {
  const port = integer.check(z.minimum(0), z.maximum(65535));
  assert.equal(port.parse(8080), 8080);
  assert.equal(port.parse("8080"), 8080);
  assert.equal(integer.parse("-12"), -12);
  assert.equal(integer.parse("18446744073"), 18446744073);
  assert.deepEqual(messages(port.safeParse("70000")), ["Too big: expected number to be <=65535"]);
  assert.deepEqual(messages(port.safeParse(-1)), ["Too small: expected number to be >=0"]);
  for (const bad of ["80 80", "1.5", "0x10", "", "eighty"]) {
    assert.deepEqual(messages(port.safeParse(bad)), ["Invalid input: expected number, received string"], bad);
  }
  assert.deepEqual(messages(port.safeParse(1.5)), ["Invalid input: expected int, received number"]);
  assert.deepEqual(messages(port.safeParse(undefined)), [
    "Invalid input: expected number, received undefined",
  ]);
});

Deno.test("double accepts a JSON number or a numeric string", () => {
  const pct = double.check(z.minimum(0), z.maximum(100));
  assert.equal(pct.parse(12.5), 12.5);
  assert.equal(pct.parse("12.5"), 12.5);
  assert.equal(pct.parse("1e1"), 10);
  assert.equal(pct.parse(".5"), 0.5);
  assert.deepEqual(messages(pct.safeParse("101")), ["Too big: expected number to be <=100"]);
  assert.deepEqual(messages(pct.safeParse("half")), ["Invalid input: expected number, received string"]);
});

Deno.test("envoyEnum matches the exact name or the upper-cased value and outputs the canonical name", () => {
  const codec = envoyEnum(["AUTO", "HTTP1", "HTTP2"]);
  assert.equal(codec.parse("AUTO"), "AUTO");
  assert.equal(codec.parse("auto"), "AUTO");
  assert.equal(codec.parse("Http2"), "HTTP2");
  assert.deepEqual(messages(codec.safeParse("http9")), [
    'Invalid option: expected one of "AUTO"|"HTTP1"|"HTTP2"',
  ]);
  assert.deepEqual(messages(codec.safeParse(1)), ['Invalid option: expected one of "AUTO"|"HTTP1"|"HTTP2"']);
  // like protobuf: the exact name, else the value upper-cased (so "tlsv1_2" is not TLSv1_2)
  const tls = envoyEnum(["TLS_AUTO", "TLSv1_2"]);
  assert.equal(tls.parse("tls_auto"), "TLS_AUTO");
  assert.equal(tls.parse("TLSv1_2"), "TLSv1_2");
  assert.equal(tls.safeParse("tlsv1_2").success, false);
  assert.equal(z._default(codec, "AUTO").parse(undefined), "AUTO");
});
