/**
 * HTTP/1.x request head parser (RFC 9112, strict like Envoy): works on bytes [start, end) of the
 * connection buffer and returns null until the whole head is there.
 */
import { CR, decodeBytes, LF, SP, TOKEN } from "./chars.ts";
import {
  buildHeaders,
  checkChunkedFraming,
  CONN_CLOSE,
  CONN_KEEP_ALIVE,
  CONN_UPGRADE,
  findHeadEnd,
  framing,
  readFraming,
  scan,
  scanFields,
} from "./fields.ts";
import { classifyTarget, FORM_ABSOLUTE, FORM_AUTHORITY, FORM_ORIGIN, target } from "./target.ts";
import { type H1Limits, H1ParseError, type HeadScanState, type RequestHead } from "./types.ts";

const METHODS = ["GET", "POST", "PUT", "HEAD", "DELETE", "OPTIONS", "PATCH", "CONNECT", "TRACE"];
const METHOD_BYTES = METHODS.map((m) => new TextEncoder().encode(m));
const H2_PREFACE = new TextEncoder().encode("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

/** Length of the HTTP/2 connection preface. */
export const H2_PREFACE_LENGTH = 24;

/**
 * True when [start, end) begins with the complete 24-byte HTTP/2 connection preface. Use
 * `h2PrefaceState` to decide early on partial input.
 */
export function isH2Preface(buf: Uint8Array, start: number, end: number): boolean {
  return end - start >= H2_PREFACE_LENGTH && h2PrefaceState(buf, start, end) === 1;
}

/** Compares [start, end) with the HTTP/2 preface: 1 complete match, 0 mismatch, -1 a matching prefix. */
export function h2PrefaceState(buf: Uint8Array, start: number, end: number): 1 | 0 | -1 {
  const n = end - start < H2_PREFACE_LENGTH ? end - start : H2_PREFACE_LENGTH;
  for (let i = 0; i < n; i++) if (buf[start + i] !== H2_PREFACE[i]) return 0;
  return n === H2_PREFACE_LENGTH ? 1 : -1;
}

function internMethod(buf: Uint8Array, s: number, e: number): string | undefined {
  const len = e - s;
  for (let k = 0; k < METHOD_BYTES.length; k++) {
    const m = METHOD_BYTES[k];
    if (m.length !== len || m[0] !== buf[s]) continue;
    let i = 1;
    while (i < len && buf[s + i] === m[i]) i++;
    if (i === len) return METHODS[k];
  }
  return undefined;
}

function bad(details: string, message: string): H1ParseError {
  return new H1ParseError(400, details, message);
}

/** Offsets of the last parsed request line (module scratch). */
const line = { methodEnd: 0, targetStart: 0, targetEnd: 0, minor: 0 };

/** Parses the request line at `s` within [s, end); returns the offset after its CRLF or -1 if incomplete. */
function parseRequestLine(buf: Uint8Array, s: number, end: number): number {
  let p = s;
  while (p < end && TOKEN[buf[p]] !== 0) p++;
  if (p >= end) return -1;
  if (p === s || buf[p] !== SP) throw bad("http1.codec_error", "Invalid method");
  line.methodEnd = p;
  const ts = ++p;
  for (;;) {
    if (p >= end) return -1;
    const b = buf[p];
    if (b === SP) break;
    if (b < 0x21 || b === 0x7f) {
      throw bad(b === CR || b === LF ? "http1.codec_error" : "http1.invalid_url", "Invalid request target");
    }
    p++;
  }
  if (p === ts) throw bad("http1.invalid_url", "Empty request target");
  line.targetStart = ts;
  line.targetEnd = p;
  p++;
  const avail = end - p;
  // "HTTP/1.x\r\n", checked byte by byte so a bad prefix fails before the line is complete
  for (let i = 0; i < 10 && i < avail; i++) {
    const b = buf[p + i];
    const want = VERSION_TEMPLATE[i];
    if (b === want || (want === 0 && b >= 48 && b <= 57)) continue;
    throw bad("http1.codec_error", "Invalid HTTP version");
  }
  if (avail < 10) return -1;
  const major = buf[p + 5];
  const minor = buf[p + 7];
  if (major !== 49 || (minor !== 48 && minor !== 49)) {
    if (major === 50 && minor === 48 && h2PrefaceState(buf, s, end) !== 0) {
      throw bad("http1.h2_preface", "HTTP/2 connection preface on an HTTP/1 connection");
    }
    throw bad("http1.codec_error", "Unsupported HTTP version");
  }
  line.minor = minor - 48;
  return p + 10;
}
/** "HTTP/d.d\r\n" with 0 standing for any digit. */
const VERSION_TEMPLATE = new Uint8Array([72, 84, 84, 80, 47, 0, 46, 0, CR, LF]);

/**
 * Parses a request head in buf[start, end). Returns null while the head is incomplete (and within
 * `limits.maxHeadersBytes`), the parsed head otherwise; throws H1ParseError (400/431/501) on bad input.
 * A head that arrives whole is parsed in one pass. Pass the same per-connection `state` on every call
 * for a head that trickles in, so its bytes are scanned once instead of re-parsed on each call.
 */
export function parseRequestHead(
  buf: Uint8Array,
  start: number,
  end: number,
  limits: H1Limits,
  state?: HeadScanState,
): RequestHead | null {
  let s = start;
  while (s + 1 < end && buf[s] === CR && buf[s + 1] === LF) s += 2; // RFC 9112 2.2: ignore leading CRLF
  const max = limits.maxHeadersBytes;
  let stop = end;
  if (state !== undefined && state.scanned > s - start) {
    const found = findHeadEnd(buf, start + state.scanned, end, true, 400);
    if (found < 0) {
      if (end - start > max) throw new H1ParseError(431, "http1.headers_too_large", "Request head too large");
      state.scanned = scan.lastLineStart - start;
      return null;
    }
    stop = found;
  }
  const capped = s + max < stop ? s + max : stop;
  const fieldsStart = parseRequestLine(buf, s, capped);
  const headEnd = fieldsStart < 0
    ? -1
    : scanFields(buf, fieldsStart, capped, limits.maxHeadersCount, true, 400, 431);
  if (headEnd < 0) {
    if (capped < stop || end - start > max) {
      throw new H1ParseError(431, "http1.headers_too_large", "Request head too large");
    }
    if (state !== undefined) state.scanned = fieldsStart < 0 ? 0 : scan.lastLineStart - start;
    return null;
  }
  if (state !== undefined) state.scanned = 0;
  return buildRequest(buf, s, headEnd);
}

function buildRequest(buf: Uint8Array, s: number, headEnd: number): RequestHead {
  const me = line.methodEnd;
  const ts = line.targetStart;
  const te = line.targetEnd;
  const versionMinor: 0 | 1 = line.minor === 1 ? 1 : 0;
  const internedMethod = internMethod(buf, s, me);
  classifyTarget(buf, ts, te, internedMethod === "CONNECT", internedMethod === "OPTIONS");

  // framing and connection semantics from the scanned fields
  readFraming(buf, true, 400);
  const { contentLength, teCount, conn, upgradeIdx, hostIdx } = framing;
  const expectContinue = versionMinor === 1 && framing.expect100;
  if (teCount > 0 && versionMinor === 0) {
    throw bad("http1.invalid_transfer_encoding", "Transfer-Encoding in an HTTP/1.0 request");
  }
  checkChunkedFraming(400, 501);
  const form = target.form;
  if (versionMinor === 1 && hostIdx < 0 && form !== FORM_ABSOLUTE && form !== FORM_AUTHORITY) {
    throw bad("missing_host_header", "Missing Host header");
  }

  // one decode for the whole head, then slices
  const fields = scan.fields;
  const head = decodeBytes(buf, s, headEnd);
  const headers = buildHeaders(head, s, contentLength);
  const rawTarget = head.slice(ts - s, te - s);
  let path = "";
  let absoluteHost = "";
  let absoluteScheme = "";
  if (form === FORM_ORIGIN) {
    path = rawTarget;
  } else if (form === FORM_ABSOLUTE) {
    absoluteHost = head.slice(target.authStart - s, target.authEnd - s);
    absoluteScheme = target.https ? "https" : "http";
    path = target.pathStart === te ? "/" : head.slice(target.pathStart - s, te - s);
    if (path.charCodeAt(0) !== 47) path = "/" + path;
  } else if (form === FORM_AUTHORITY) {
    absoluteHost = rawTarget;
  } else {
    path = "*";
  }
  return {
    method: internedMethod ?? head.slice(0, me - s),
    target: rawTarget,
    path,
    absoluteHost,
    absoluteScheme,
    versionMinor,
    headers,
    headEnd,
    contentLength,
    chunked: teCount > 0,
    keepAlive: (conn & CONN_CLOSE) === 0 && (versionMinor === 1 || (conn & CONN_KEEP_ALIVE) !== 0),
    upgrade: upgradeIdx >= 0 && (conn & CONN_UPGRADE) !== 0
      ? head.slice(fields[upgradeIdx + 2] - s, fields[upgradeIdx + 3] - s).toLowerCase()
      : "",
    expectContinue,
    host: hostIdx >= 0 ? head.slice(fields[hostIdx + 2] - s, fields[hostIdx + 3] - s) : "",
  };
}
