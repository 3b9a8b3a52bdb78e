/**
 * The connection manager's view of the HTTP/1.1 codec: parsers from h1/, path handling, and the small
 * response-side encoders (heads, chunk framing, local replies) tuned for the hot path.
 */
import type { HeaderMap } from "./headers.ts";

export { parseRequestHead } from "./h1/request.ts";
export { isH2Preface } from "./h1/request.ts";
export { parseResponseHead, responseBodyKind } from "./h1/response.ts";
export { ChunkedDecoder } from "./h1/chunked.ts";
export { H1ParseError } from "./h1/types.ts";
export type { HeadScanState, RequestHead, ResponseHead } from "./h1/types.ts";
export { preparePath } from "./path.ts";

const encoder = new TextEncoder();

/** Reason phrases of RFC 9110. */
export const REASONS: Record<number, string> = {
  100: "Continue",
  101: "Switching Protocols",
  200: "OK",
  201: "Created",
  202: "Accepted",
  203: "Non-Authoritative Information",
  204: "No Content",
  205: "Reset Content",
  206: "Partial Content",
  300: "Multiple Choices",
  301: "Moved Permanently",
  302: "Found",
  303: "See Other",
  304: "Not Modified",
  307: "Temporary Redirect",
  308: "Permanent Redirect",
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  408: "Request Timeout",
  409: "Conflict",
  410: "Gone",
  411: "Length Required",
  412: "Precondition Failed",
  413: "Payload Too Large",
  414: "URI Too Long",
  415: "Unsupported Media Type",
  416: "Range Not Satisfiable",
  417: "Expectation Failed",
  421: "Misdirected Request",
  422: "Unprocessable Content",
  426: "Upgrade Required",
  429: "Too Many Requests",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  501: "Not Implemented",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
  505: "HTTP Version Not Supported",
};

const STATUS_LINES11 = new Map<number, string>();
const STATUS_LINES10 = new Map<number, string>();

function statusLine(status: number, minor: 0 | 1): string {
  const cache = minor ? STATUS_LINES11 : STATUS_LINES10;
  let l = cache.get(status);
  if (l === undefined) {
    l = `HTTP/1.${minor} ${status} ${REASONS[status] ?? "Unknown"}\r\n`;
    cache.set(status, l);
  }
  return l;
}

/** Serializes a response head (status line, headers, blank line). */
export function encodeResponseHead(status: number, headers: HeaderMap, versionMinor: 0 | 1 = 1): Uint8Array {
  let s = statusLine(status, versionMinor);
  const n = headers.names;
  const v = headers.values;
  for (let i = 0; i < n.length; i++) s += n[i] + ": " + v[i] + "\r\n";
  return encoder.encode(s + "\r\n");
}

/** Serializes a request head for an HTTP/1.1 upstream. */
export function encodeRequestHead(method: string, path: string, headers: HeaderMap): Uint8Array {
  let s = method + " " + path + " HTTP/1.1\r\n";
  const n = headers.names;
  const v = headers.values;
  for (let i = 0; i < n.length; i++) s += n[i] + ": " + v[i] + "\r\n";
  return encoder.encode(s + "\r\n");
}

/** The terminating chunk. */
export const LAST_CHUNK: Uint8Array = encoder.encode("0\r\n\r\n");
/** The interim 100 Continue response. */
export const CONTINUE_100: Uint8Array = encoder.encode("HTTP/1.1 100 Continue\r\n\r\n");

/** One chunk (size line, data, CRLF), plus the last chunk when `last`; copies `data`. */
export function chunkFrame(data: Uint8Array, last: boolean): Uint8Array {
  const sizeLine = data.length.toString(16) + "\r\n";
  const tail = last ? 7 : 2;
  const out = new Uint8Array(sizeLine.length + data.length + tail);
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
    statusLine(status, 1) +
      (b ? "content-type: text/plain\r\n" : "") +
      `content-length: ${
        encoder.encode(b).length
      }\r\ndate: ${httpDate()}\r\nserver: ${serverName}\r\nconnection: close\r\n\r\n${b}`,
  );
}
