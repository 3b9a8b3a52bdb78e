import assert from "node:assert/strict";
import { HeaderMap } from "../../../../http/headers.ts";
import {
  FrameSplitter,
  hasProtoEncodedGrpcWebContentType,
  isGrpcResponseHeaders,
  isGrpcWebContentType,
  percentEncode,
  trailerFrame,
} from "./filter.ts";

Deno.test("the four gRPC-Web request content-types, exactly", () => {
  for (const ct of ["application/grpc-web", "application/grpc-web+proto", "application/grpc-web-text"]) {
    assert.ok(isGrpcWebContentType(ct), ct);
  }
  assert.ok(isGrpcWebContentType("application/grpc-web-text+proto"));
  for (const ct of [undefined, "application/grpc", "application/grpc-web+json", "Application/Grpc-Web"]) {
    assert.ok(!isGrpcWebContentType(ct), String(ct));
  }
});

Deno.test("proto-encoded gRPC-Web response content-types ignore case and parameters", () => {
  assert.ok(hasProtoEncodedGrpcWebContentType("application/grpc-web; version=1"));
  assert.ok(hasProtoEncodedGrpcWebContentType("APPLICATION/GRPC-WEB+PROTO    ; ok=1"));
  assert.ok(!hasProtoEncodedGrpcWebContentType("application/grpc-web+json"));
  assert.ok(!hasProtoEncodedGrpcWebContentType("application/grpc-web-text"));
  assert.ok(!hasProtoEncodedGrpcWebContentType(undefined));
});

Deno.test("gRPC response heads: trailers-only needs grpc-status; otherwise 200 and a gRPC type", () => {
  const res = (status: number, pairs: [string, string][]) => ({ status, headers: HeaderMap.from(pairs) });
  assert.ok(isGrpcResponseHeaders(res(503, [["grpc-status", "14"]]), true));
  assert.ok(!isGrpcResponseHeaders(res(200, [["content-type", "application/grpc"]]), true));
  assert.ok(isGrpcResponseHeaders(res(200, [["content-type", "application/grpc+proto"]]), false));
  assert.ok(!isGrpcResponseHeaders(res(500, [["content-type", "application/grpc"]]), false));
});

Deno.test("frames are split across chunks and re-emitted whole", () => {
  const s = new FrameSplitter();
  const f1 = [0, 0, 0, 0, 2, 7, 8];
  const f2 = [0, 0, 0, 0, 0];
  const all = new Uint8Array([...f1, ...f2, 0, 0, 0]);
  assert.deepEqual(s.push(all.subarray(0, 3)), []);
  assert.deepEqual(s.push(all.subarray(3, 9)).map((f) => [...f]), [f1]);
  assert.deepEqual(s.push(all.subarray(9)).map((f) => [...f]), [f2]);
  assert.deepEqual(s.push(new Uint8Array([0, 1, 9])).map((f) => [...f]), [[0, 0, 0, 0, 1, 9]]);
});

Deno.test("trailer frame and grpc-message percent-encoding", () => {
  const f = trailerFrame(HeaderMap.from([["grpc-status", "0"], ["grpc-message", "ok"]]));
  assert.deepEqual([...f.subarray(0, 5)], [0x80, 0, 0, 0, 0x20]);
  assert.equal(new TextDecoder().decode(f.subarray(5)), "grpc-status:0\r\ngrpc-message:ok\r\n");
  assert.equal(percentEncode(new TextEncoder().encode("a b%\n~é")), "a b%25%0A%7E%C3%A9");
});
