/**
 * Micro-benchmarks of the HTTP/1 codec: `deno bench src/http/h1/codec_bench.ts`.
 * The "encode" group compares ways to turn a head into bytes; encode.ts uses the winner (validating
 * char-by-char writes into a reused buffer, then one copy).
 */
import { HeaderMap } from "../headers.ts";
import { ChunkedDecoder } from "./chunked.ts";
import { encodeHeadString, encodeResponseHead, responseHeadString } from "./encode.ts";
import { parseRequestHead } from "./request.ts";
import { parseResponseHead } from "./response.ts";

const LIMITS = { maxHeadersBytes: 60 * 1024, maxHeadersCount: 100 };
const enc = new TextEncoder();
const REQUEST = enc.encode(
  "GET /static/js/app.5f3a1c.js?v=12 HTTP/1.1\r\nHost: www.example.com\r\n" +
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36\r\n" +
    "Accept: */*\r\nAccept-Language: en-US,en;q=0.9\r\nAccept-Encoding: gzip, deflate, br\r\n" +
    "Referer: https://www.example.com/\r\nConnection: keep-alive\r\nCookie: sid=abc123def456\r\n\r\n",
);
const RESPONSE = enc.encode(
  "HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Mon, 01 Jan 2024 00:00:00 GMT\r\n" +
    "Content-Type: application/json\r\nContent-Length: 32\r\nConnection: keep-alive\r\n\r\n",
);
const CHUNKED = enc.encode("400\r\n" + "x".repeat(1024) + "\r\n400\r\n" + "y".repeat(1024) + "\r\n0\r\n\r\n");
const HEADERS = HeaderMap.from([
  ["content-type", "text/html; charset=utf-8"],
  ["content-length", "1234"],
  ["date", "Mon, 01 Jan 2024 00:00:00 GMT"],
  ["server", "envoy"],
  ["x-envoy-upstream-service-time", "3"],
  ["cache-control", "no-cache"],
  ["vary", "accept-encoding"],
  ["x-request-id", "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"],
]);

let sink: unknown;

Deno.bench(
  `parseRequestHead, ${REQUEST.length}-byte browser request`,
  { group: "parse", baseline: true },
  () => {
    sink = parseRequestHead(REQUEST, 0, REQUEST.length, LIMITS);
  },
);
Deno.bench(`parseResponseHead, ${RESPONSE.length}-byte response`, { group: "parse" }, () => {
  sink = parseResponseHead(RESPONSE, 0, RESPONSE.length, LIMITS);
});
Deno.bench("ChunkedDecoder, 2 x 1 KiB chunks", { group: "parse" }, () => {
  const d = new ChunkedDecoder(LIMITS);
  let p = 0;
  for (;;) {
    const r = d.next(CHUNKED, p, CHUNKED.length);
    p = r.consumed;
    if (r.kind === "done") break;
  }
  sink = p;
});

// encode strategies (encode.ts uses the first)
const textEncoder = new TextEncoder();
let scratch = new Uint8Array(4096);

Deno.bench("direct byte writes + slice (used)", { group: "encode", baseline: true }, () => {
  sink = encodeResponseHead(200, HEADERS);
});
Deno.bench("string + TextEncoder.encode", { group: "encode" }, () => {
  sink = encodeHeadString(responseHeadString(200, HEADERS));
});
Deno.bench("string + encodeInto scratch + slice", { group: "encode" }, () => {
  const s = responseHeadString(200, HEADERS);
  if (scratch.length < s.length * 3) scratch = new Uint8Array(s.length * 3);
  const r = textEncoder.encodeInto(s, scratch);
  sink = scratch.slice(0, r.written);
});

globalThis.addEventListener("unload", () => void sink);
