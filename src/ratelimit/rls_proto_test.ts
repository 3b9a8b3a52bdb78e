import assert from "node:assert/strict";
import { encodeGrpcFrame, encodeGrpcMessage, GrpcFrameDecoder } from "../grpc/frame.ts";
import { ProtoReader, ProtoWriter, utf8Length, varintSize } from "../grpc/protobuf.ts";
import {
  decodeRateLimitRequest,
  decodeRateLimitResponse,
  encodeRateLimitRequest,
  encodeRateLimitResponse,
} from "./rls_proto.ts";
import { Code, type RateLimitResponse, Unit } from "./types.ts";

const hex = (b: Uint8Array) => [...b].map((x) => x.toString(16).padStart(2, "0")).join(" ");

Deno.test("RLS protobuf codec", async (t) => {
  await t.step("request bytes match the proto field numbers", () => {
    const bytes = encodeRateLimitRequest({
      domain: "d",
      descriptors: [{ entries: [{ key: "k", value: "v" }], hitsAddend: 5 }],
      hitsAddend: 3,
    });
    // domain=1 "d"; descriptors=2 { entries=1 {key=1 "k", value=2 "v"}, hits_addend=3 UInt64Value{value=1: 5} }; hits_addend=3: 3
    assert.equal(hex(bytes), "0a 01 64 12 0c 0a 06 0a 01 6b 12 01 76 1a 02 08 05 18 03");
    const back = decodeRateLimitRequest(bytes);
    assert.deepEqual(back, {
      domain: "d",
      descriptors: [{ entries: [{ key: "k", value: "v" }], hitsAddend: 5 }],
      hitsAddend: 3,
    });
  });

  await t.step("request with limit override, hits_addend 0 present, unicode and unknown fields", () => {
    const req = {
      domain: "dömain",
      descriptors: [
        {
          entries: [{ key: "a", value: "" }, { key: "b", value: "✓😀" }],
          limit: { requestsPerUnit: 300, unit: Unit.HOUR },
        },
        { entries: [{ key: "x", value: "y" }], hitsAddend: 0 },
      ],
      hitsAddend: 0,
    };
    const bytes = encodeRateLimitRequest(req);
    // append an unknown field 9 (varint) and an unknown length-delimited field 10
    const extra = new Uint8Array([0x48, 0x96, 0x01, 0x52, 0x02, 0x01, 0x02]);
    const all = new Uint8Array(bytes.length + extra.length);
    all.set(bytes);
    all.set(extra, bytes.length);
    assert.deepEqual(decodeRateLimitRequest(all), req);
  });

  await t.step("response bytes and round trip", () => {
    const res: RateLimitResponse = {
      overallCode: Code.OVER_LIMIT,
      statuses: [
        {
          code: Code.OVER_LIMIT,
          currentLimit: { name: "n", requestsPerUnit: 10, unit: Unit.MINUTE },
          limitRemaining: 0,
          durationUntilResetMs: 42_000,
        },
        { code: Code.OK, limitRemaining: 4294967295 },
      ],
      responseHeadersToAdd: [{ key: "x-a", value: "1" }],
      requestHeadersToAdd: [],
    };
    const bytes = encodeRateLimitResponse(res);
    // overall_code=1: 2; statuses=2 {code=1: 2, current_limit=2 {rpu=1: 10, unit=2: 2, name=3 "n"}, duration=4 {seconds=1: 42}}
    assert.equal(
      hex(bytes.subarray(0, 20)),
      "08 02 12 0f 08 02 12 07 08 0a 10 02 1a 01 6e 22 02 08 2a 12",
    );
    assert.deepEqual(decodeRateLimitResponse(bytes), res);
  });

  await t.step("truncated input is an error, never a hang", () => {
    const bytes = encodeRateLimitRequest({ domain: "abc", descriptors: [], hitsAddend: 0 });
    assert.throws(() => decodeRateLimitRequest(bytes.subarray(0, bytes.length - 1)), RangeError);
    assert.throws(() => decodeRateLimitRequest(new Uint8Array([0x0b])), RangeError); // group wire type
  });

  await t.step("varints above 32 bits", () => {
    for (const n of [0, 127, 128, 16383, 16384, 2 ** 31, 2 ** 32 + 5, 2 ** 53 - 1]) {
      const w = new ProtoWriter(varintSize(n));
      w.varint(n);
      assert.equal(w.pos, w.buf.length);
      assert.equal(new ProtoReader(w.buf).varint(), n);
    }
    assert.equal(utf8Length("a✓😀"), new TextEncoder().encode("a✓😀").length);
  });
});

Deno.test("gRPC framing", () => {
  const a = encodeGrpcFrame(new Uint8Array([1, 2, 3]));
  assert.equal(hex(a), "00 00 00 00 03 01 02 03");
  const b = encodeGrpcFrame(new Uint8Array(0));
  const d = new GrpcFrameDecoder();
  const both = new Uint8Array([...a, ...b]);
  assert.deepEqual(d.push(both.subarray(0, 2)), []);
  assert.deepEqual(d.push(both.subarray(2, 8)).map((m) => [...m]), [[1, 2, 3]]);
  assert.deepEqual(d.push(both.subarray(8)).map((m) => [...m]), [[]]);
  assert.equal(d.pending, 0);
  assert.throws(() => new GrpcFrameDecoder().push(new Uint8Array([1, 0, 0, 0, 0])), /Compressed/);
  assert.throws(() => new GrpcFrameDecoder(10).push(new Uint8Array([0, 0, 0, 0, 11])), /exceeds/);
  assert.equal(encodeGrpcMessage("a b%ü"), "a b%25%C3%BC");
});
