/**
 * HTTP/1.x response head parser for upstream connections. Tolerant where Envoy is (bare LF line endings,
 * missing reason phrase, CTLs in values), strict on framing; every error is an H1ParseError with status 502.
 */
import { CR, decodeBytes, LF, SP } from "./chars.ts";
import {
  buildHeaders,
  checkChunkedFraming,
  CONN_CLOSE,
  CONN_KEEP_ALIVE,
  findHeadEnd,
  framing,
  readFraming,
  scan,
  scanFields,
} from "./fields.ts";
import { type H1Limits, H1ParseError, type HeadScanState, type ResponseHead } from "./types.ts";

function upe(details: string, message: string): H1ParseError {
  return new H1ParseError(502, details, message);
}

/**
 * Parses a response head in buf[start, end). Returns null while incomplete (and within limits), throws
 * H1ParseError (status 502, the caller maps it to UPE) on bad input. `state` avoids rescans as in
 * parseRequestHead.
 */
export function parseResponseHead(
  buf: Uint8Array,
  start: number,
  end: number,
  limits: H1Limits,
  state?: HeadScanState,
): ResponseHead | null {
  const max = limits.maxHeadersBytes;
  let stop = end;
  if (state !== undefined && state.scanned > 0) {
    const found = findHeadEnd(buf, start + state.scanned, end, false, 502);
    if (found < 0) {
      if (end - start > max) throw upe("http1.headers_too_large", "Response head too large");
      state.scanned = scan.lastLineStart - start;
      return null;
    }
    stop = found;
  }
  const capped = start + max < stop ? start + max : stop;
  const fieldsStart = parseStatusLine(buf, start, capped);
  const headEnd = fieldsStart < 0
    ? -1
    : scanFields(buf, fieldsStart, capped, limits.maxHeadersCount, false, 502, 502);
  if (headEnd < 0) {
    if (capped < stop) throw upe("http1.headers_too_large", "Response head too large");
    if (state !== undefined) state.scanned = fieldsStart < 0 ? 0 : scan.lastLineStart - start;
    return null;
  }
  if (state !== undefined) state.scanned = 0;
  return buildResponse(buf, start, headEnd);
}

/** Offsets of the last parsed status line (module scratch). */
const statusLine = { status: 0, minor: 0, reasonStart: 0, reasonEnd: 0 };
const STATUS_PREFIX = new Uint8Array([72, 84, 84, 80, 47, 49, 46]); // "HTTP/1."

/** Parses the status line within [p, end); returns the offset after it or -1 if incomplete. */
function parseStatusLine(buf: Uint8Array, p: number, end: number): number {
  const avail = end - p;
  for (let i = 0; i < 7 && i < avail; i++) {
    if (buf[p + i] !== STATUS_PREFIX[i]) throw upe("http1.codec_error", "Invalid status line");
  }
  if (avail < 13) return -1;
  const minor = buf[p + 7];
  if ((minor !== 48 && minor !== 49) || buf[p + 8] !== SP) {
    throw upe("http1.codec_error", "Invalid status line");
  }
  const d0 = buf[p + 9] - 48;
  const d1 = buf[p + 10] - 48;
  const d2 = buf[p + 11] - 48;
  if (d0 < 1 || d0 > 9 || d1 < 0 || d1 > 9 || d2 < 0 || d2 > 9) {
    throw upe("http1.codec_error", "Invalid status code");
  }
  statusLine.status = d0 * 100 + d1 * 10 + d2;
  statusLine.minor = minor - 48;
  let q = p + 12;
  let rs = q;
  if (buf[q] === SP) {
    rs = ++q;
    for (;;) {
      if (q >= end) return -1;
      const b = buf[q];
      if (b === CR || b === LF) break;
      if (b === 0) throw upe("http1.invalid_characters", "NUL in reason phrase");
      q++;
    }
  }
  statusLine.reasonStart = rs;
  statusLine.reasonEnd = q;
  if (buf[q] === CR) {
    if (q + 1 >= end) return -1;
    if (buf[q + 1] !== LF) throw upe("http1.codec_error", "Bare CR in status line");
    return q + 2;
  }
  if (buf[q] === LF) return q + 1;
  throw upe("http1.codec_error", "Invalid status line");
}

function buildResponse(buf: Uint8Array, start: number, headEnd: number): ResponseHead {
  const status = statusLine.status;
  const versionMinor: 0 | 1 = statusLine.minor === 1 ? 1 : 0;
  const rs = statusLine.reasonStart;
  const re = statusLine.reasonEnd;

  readFraming(buf, false, 502);
  const { contentLength, teCount, conn, upgradeIdx } = framing;
  const noBodyStatus = status < 200 || status === 204;
  if (teCount > 0 && noBodyStatus) {
    throw upe("http1.transfer_encoding_not_allowed", "Transfer-Encoding in a 1xx or 204 response");
  }
  checkChunkedFraming(502, 502);
  if (noBodyStatus && contentLength > 0) {
    throw upe("http1.content_length_not_allowed", "Content-Length in a 1xx or 204 response");
  }

  const fields = scan.fields;
  const head = decodeBytes(buf, start, headEnd);
  return {
    status,
    reason: re > rs ? head.slice(rs - start, re - start) : "",
    versionMinor,
    headers: buildHeaders(head, start, contentLength),
    headEnd,
    contentLength,
    chunked: teCount > 0,
    keepAlive: (conn & CONN_CLOSE) === 0 && (versionMinor === 1 || (conn & CONN_KEEP_ALIVE) !== 0),
    upgrade: status === 101 && upgradeIdx >= 0
      ? head.slice(fields[upgradeIdx + 2] - start, fields[upgradeIdx + 3] - start).toLowerCase()
      : "",
  };
}

/** True when a response to `requestMethod` with `status` carries no body (1xx, 204, 304, HEAD). */
export function responseHasNoBody(status: number, requestMethod: string): boolean {
  return status < 200 || status === 204 || status === 304 || requestMethod === "HEAD";
}

/** How the body of a parsed response is framed, given the request method. */
export type ResponseBodyKind = "none" | "length" | "chunked" | "close";

/**
 * Decides the body framing of `head` for a request with `requestMethod`: "none", "length"
 * (contentLength bytes, maybe 0), "chunked", or "close" (read until the upstream closes; not reusable).
 * A CONNECT 2xx or a 101 is "none": the connection becomes a tunnel.
 */
export function responseBodyKind(head: ResponseHead, requestMethod: string): ResponseBodyKind {
  if (responseHasNoBody(head.status, requestMethod)) return "none";
  if (requestMethod === "CONNECT" && head.status < 300) return "none";
  if (head.chunked) return "chunked";
  if (head.contentLength >= 0) return "length";
  return "close";
}
