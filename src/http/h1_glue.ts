/**
 * The connection manager's view of the HTTP/1.1 codec: parsers from h1/, path handling, and the small
 * response-side encoders (heads, chunk framing, local replies) tuned for the hot path.
 */
import type { HeaderMap } from "./headers.ts";

export { parseRequestHead } from "./h1/request.ts";
export { h2PrefaceState, isH2Preface } from "./h1/request.ts";
export { parseResponseHead, responseBodyKind } from "./h1/response.ts";
export { ChunkedDecoder } from "./h1/chunked.ts";
export { H1ParseError } from "./h1/types.ts";
export type { HeadScanState, RequestHead, ResponseHead } from "./h1/types.ts";
export { preparePath } from "./path.ts";

export { encodeRequestHead, encodeResponseHead, LAST_CHUNK } from "./h1/encode.ts";
export { allocBytes, joinBytes } from "./h1/byte_arena.ts";
import { allocBytes } from "./h1/byte_arena.ts";
import { LAST_CHUNK } from "./h1/encode.ts";
import { reasonPhrase } from "./h1/status_text.ts";

const encoder = new TextEncoder();

/** The interim 100 Continue response. */
export const CONTINUE_100: Uint8Array = encoder.encode("HTTP/1.1 100 Continue\r\n\r\n");

/** One chunk (size line, data, CRLF), plus the last chunk when `last`; copies `data`. */
export function chunkFrame(data: Uint8Array, last: boolean): Uint8Array {
  const sizeLine = data.length.toString(16) + "\r\n";
  const tail = last ? 7 : 2;
  const out = allocBytes(sizeLine.length + data.length + tail);
  for (let i = 0; i < sizeLine.length; i++) out[i] = sizeLine.charCodeAt(i);
  out.set(data, sizeLine.length);
  let p = sizeLine.length + data.length;
  out[p++] = 13;
  out[p++] = 10;
  if (last) out.set(LAST_CHUNK, p);
  return out;
}

/** The last chunk followed by trailer fields. */
export function trailersBlock(trailers: HeaderMap): Uint8Array {
  let s = "0\r\n";
  for (const [k, v] of trailers) s += k + ": " + v + "\r\n";
  return encoder.encode(s + "\r\n");
}

let dateCache = "";
let dateSecond = 0;

/** The HTTP Date header value, recomputed at most once a second. */
export function httpDate(): string {
  const now = Date.now();
  const sec = Math.floor(now / 1000);
  if (sec !== dateSecond) {
    dateSecond = sec;
    dateCache = new Date(now).toUTCString();
  }
  return dateCache;
}

/** A complete local reply outside any stream (codec errors, header timeouts); always closes. */
export function localReplyHead(status: number, body: string, serverName: string): Uint8Array {
  const b = body ? body : "";
  return encoder.encode(
    `HTTP/1.1 ${status} ${reasonPhrase(status)}\r\n` +
      (b ? "content-type: text/plain\r\n" : "") +
      `content-length: ${
        encoder.encode(b).length
      }\r\ndate: ${httpDate()}\r\nserver: ${serverName}\r\nconnection: close\r\n\r\n${b}`,
  );
}
