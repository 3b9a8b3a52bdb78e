import assert from "node:assert/strict";
import { ChunkedDecoder } from "./chunked.ts";
import { H1ParseError } from "./types.ts";
import type { HeaderMap } from "../headers.ts";

const LIMITS = { maxHeadersBytes: 1024, maxHeadersCount: 10 };
const enc = new TextEncoder();
const dec = new TextDecoder();

interface Decoded {
  body: string;
  trailers: HeaderMap | null;
  consumed: number;
  done: boolean;
}

/** Feeds `input` in pieces of `step` bytes the way a connection loop would (keeping unconsumed bytes). */
function decodeAll(input: string | Uint8Array, step = Infinity, limits = LIMITS): Decoded {
  const all = typeof input === "string" ? enc.encode(input) : input;
  const d = new ChunkedDecoder(limits);
  let body = "";
  let pos = 0;
  let avail = 0;
  for (;;) {
    avail = Math.min(all.length, avail + (step === Infinity ? all.length : step));
    for (;;) {
      const r = d.next(all, pos, avail);
      if (r.kind === "data") {
        body += dec.decode(all.subarray(r.start, r.end));
        pos = r.consumed;
        continue;
      }
      pos = r.consumed;
      if (r.kind === "done") return { body, trailers: r.trailers, consumed: pos, done: d.done };
      break;
    }
    if (avail === all.length) return { body, trailers: null, consumed: pos, done: d.done };
  }
}

function rejects(input: string, status = 400): void {
  assert.throws(() => decodeAll(input), (e: unknown) => {
    assert.ok(e instanceof H1ParseError, String(e));
    assert.equal(e.status, status, `${JSON.stringify(input)}: ${e.message}`);
    return true;
  });
}

const SAMPLE = '5\r\nhello\r\n7;ext=1;q="a b"\r\n, world\r\nA\r\n0123456789\r\n0\r\n\r\n';

Deno.test("ChunkedDecoder: decodes bodies", async (t) => {
  await t.step("whole input", () => {
    const r = decodeAll(SAMPLE + "NEXT");
    assert.equal(r.body, "hello, world0123456789");
    assert.equal(r.done, true);
    assert.equal(r.trailers, null);
    assert.equal(r.consumed, SAMPLE.length);
  });
  await t.step("byte by byte", () => {
    const r = decodeAll(SAMPLE, 1);
    assert.equal(r.body, "hello, world0123456789");
    assert.equal(r.consumed, SAMPLE.length);
  });
  await t.step("every split point", () => {
    for (let step = 2; step < SAMPLE.length; step++) {
      assert.equal(decodeAll(SAMPLE, step).body, "hello, world0123456789");
    }
  });
  await t.step("data slices are zero-copy views of the input", () => {
    const buf = enc.encode("3\r\nabc\r\n0\r\n\r\n");
    const d = new ChunkedDecoder(LIMITS);
    const r = d.next(buf, 0, buf.length);
    assert.equal(r.kind, "data");
    assert.deepEqual([r.start, r.end], [3, 6]);
  });
  await t.step("uppercase hex, leading zeros, whitespace before extension", () => {
    assert.equal(decodeAll("0000A \t;x\r\n0123456789\r\n0\r\n\r\n").body, "0123456789");
    assert.equal(decodeAll("f\r\n" + "x".repeat(15) + "\r\n0\r\n\r\n").body.length, 15);
  });
  await t.step("trailers, also byte by byte", () => {
    const s = "1\r\na\r\n0\r\nGrpc-Status: 0\r\ngrpc-message:  ok \r\n\r\n";
    for (const step of [Infinity, 1, 3]) {
      const r = decodeAll(s, step);
      assert.equal(r.body, "a");
      assert.ok(r.trailers);
      assert.deepEqual(r.trailers.names, ["grpc-status", "grpc-message"]);
      assert.equal(r.trailers.get("grpc-message"), "ok");
      assert.equal(r.consumed, s.length);
    }
  });
  await t.step("reset for another message", () => {
    const d = new ChunkedDecoder(LIMITS);
    const buf = enc.encode("0\r\n\r\n");
    assert.equal(d.next(buf, 0, buf.length).kind, "done");
    assert.equal(d.next(buf, 5, 5).kind, "done");
    d.reset();
    assert.equal(d.done, false);
    assert.equal(d.next(buf, 0, buf.length).kind, "done");
  });
  await t.step("need_more keeps an incomplete trailer section unconsumed", () => {
    const buf = enc.encode("0\r\nX-A: 1\r\n");
    const d = new ChunkedDecoder(LIMITS);
    const r = d.next(buf, 0, buf.length);
    assert.equal(r.kind, "need_more");
    assert.equal(r.consumed, 3);
  });
});

Deno.test("ChunkedDecoder: rejects bad framing", async (t) => {
  await t.step("chunk sizes", () => {
    rejects("g\r\n");
    rejects("\r\n");
    rejects("-1\r\n");
    rejects(" 5\r\nhello\r\n0\r\n\r\n");
    rejects("0x5\r\nhello\r\n0\r\n\r\n");
    rejects("11111111111111111\r\n");
    rejects("20000000000000\r\n"); // 2^53
    assert.doesNotThrow(() => new ChunkedDecoder(LIMITS).next(enc.encode("1fffffffffffff\r\n"), 0, 16));
    rejects("5 x\r\nhello\r\n0\r\n\r\n");
  });
  await t.step("line endings", () => {
    rejects("5\nhello\r\n0\r\n\r\n");
    rejects("5\rhello\r\n0\r\n\r\n");
    rejects("5\r\nhelloXY0\r\n\r\n");
    rejects("5\r\nhello\n0\r\n\r\n");
    rejects("0\r\n\n");
    rejects("0\r\nX: 1\n\r\n");
  });
  await t.step("extensions", () => {
    rejects("5;a=\x01\r\nhello\r\n0\r\n\r\n");
    rejects("5;a\nb\r\nhello\r\n0\r\n\r\n");
    rejects("5;a\x7f\r\nhello\r\n0\r\n\r\n");
  });
  await t.step("trailers", () => {
    rejects("0\r\nBad Name: 1\r\n\r\n");
    rejects("0\r\nX: a\r\n b\r\n\r\n");
    rejects("0\r\nX: a\0\r\n\r\n");
  });
  await t.step("trailer limits", () => {
    let many = "0\r\n";
    for (let i = 0; i < 11; i++) many += `T${i}: v\r\n`;
    rejects(many + "\r\n", 431);
    rejects("0\r\nX: " + "a".repeat(1100) + "\r\n\r\n", 431);
    assert.throws(
      () => decodeAll("0\r\nX: " + "a".repeat(1100), 100),
      (e: unknown) => e instanceof H1ParseError && e.status === 431,
    );
  });
  await t.step("custom error status", () => {
    const d = new ChunkedDecoder(LIMITS, 502);
    assert.throws(
      () => d.next(enc.encode("zz\r\n"), 0, 4),
      (e: unknown) => e instanceof H1ParseError && e.status === 502,
    );
  });
});
