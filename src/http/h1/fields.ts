/**
 * Head framing and header-line scanning shared by the request, response and trailer parsers.
 * Scanning records offsets into a module scratch array (the parsers are synchronous), then the head is
 * decoded once and every name and value is a slice of that one string.
 */
import { HeaderMap } from "../headers.ts";
import {
  bytesEqualLower,
  COLON,
  CR,
  HT,
  K_CONNECTION,
  K_CONTENT_LENGTH,
  K_EXPECT,
  K_HOST,
  K_TRANSFER_ENCODING,
  K_UPGRADE,
  KNOWN_NAMES,
  LF,
  lookupKnownName,
  lowerBytes,
  SP,
  TOKEN,
  VALUE_LENIENT,
  VALUE_STRICT,
} from "./chars.ts";
import { H1ParseError } from "./types.ts";

/** Ints per scanned field in `fieldScratch`: name start/end, value start/end, kind. */
export const FIELD_STRIDE = 5;
/** Field kind: unknown name, already lowercase. */
export const KIND_LOWER = -1;
/** Field kind: unknown name with uppercase letters. */
export const KIND_MIXED = -2;
/** Field kind: drop this line when building (a merged duplicate). */
export const KIND_SKIP = -3;
/** Field kind: content-length whose value is replaced by the parsed number (a merged comma list). */
export const KIND_CL_NORMALIZED = -4;

/** Results of the last `scanFields` call (module scratch; read right after the call). */
export const scan = {
  /** Offsets per field, FIELD_STRIDE ints each. */
  fields: new Int32Array(FIELD_STRIDE * 64),
  /** Number of fields scanned. */
  count: 0,
  /** Line start where the last incomplete `findHeadEnd` or `scanFields` stopped. */
  lastLineStart: 0,
};

/**
 * Finds the end of a head starting at line start `from`: the offset after the blank line, or -1 when it
 * is not in [from, end) yet (then `scan.lastLineStart` says where to resume). `strict` rejects bare LF.
 * Used to resume a head that arrives in pieces; a head that arrives whole is parsed in one pass.
 */
export function findHeadEnd(
  buf: Uint8Array,
  from: number,
  end: number,
  strict: boolean,
  errStatus: number,
): number {
  let ls = from;
  for (let i = from; i < end; i++) {
    if (buf[i] !== LF) continue;
    if (i > ls && buf[i - 1] === CR) {
      if (i - 1 === ls) return i + 1;
    } else if (strict) {
      throw new H1ParseError(errStatus, "http1.codec_error", "Bare LF line ending");
    } else if (i === ls) {
      return i + 1;
    }
    ls = i + 1;
  }
  scan.lastLineStart = ls;
  return -1;
}

/**
 * Scans header lines from `pos` through the blank line, within [pos, end): names must be tokens (no space
 * before the colon, no obs-fold), values strict (no CTL but HTAB, no DEL) or lenient (no NUL/CR/LF).
 * Fills `scan.fields`/`scan.count` and returns the offset after the blank line, or -1 when
 * the section is incomplete (`scan.lastLineStart` = start of the unfinished line). Throws H1ParseError
 * with `errStatus`; too many headers throws `tooManyStatus`.
 */
export function scanFields(
  buf: Uint8Array,
  pos: number,
  end: number,
  maxCount: number,
  strict: boolean,
  errStatus: number,
  tooManyStatus: number,
): number {
  let fields = scan.fields;
  const table = strict ? VALUE_STRICT : VALUE_LENIENT;
  let count = 0;
  for (;;) {
    const ls = pos;
    if (pos >= end) return incomplete(ls, count);
    let b = buf[pos];
    if (b === CR) {
      if (pos + 1 >= end) return incomplete(ls, count);
      if (buf[pos + 1] !== LF) throw new H1ParseError(errStatus, "http1.codec_error", "Bare CR");
      pos += 2;
      break;
    }
    if (b === LF) {
      if (strict) throw new H1ParseError(errStatus, "http1.codec_error", "Bare LF line ending");
      pos += 1;
      break;
    }
    if (b === SP || b === HT) {
      throw new H1ParseError(errStatus, "http1.codec_error", "Obsolete line folding");
    }
    // field-name
    let t = 0;
    let tokenBits = 0;
    while (pos < end && (t = TOKEN[buf[pos]]) !== 0) {
      tokenBits |= t;
      pos++;
    }
    if (pos >= end) return incomplete(ls, count);
    b = buf[pos];
    if (b !== COLON) {
      if (b === SP || b === HT) {
        throw new H1ParseError(errStatus, "http1.invalid_characters", "Whitespace before colon");
      }
      if (b === CR || b === LF) {
        throw new H1ParseError(errStatus, "http1.codec_error", "Header line without colon");
      }
      throw new H1ParseError(errStatus, "http1.invalid_characters", "Invalid header name character");
    }
    if (pos === ls) throw new H1ParseError(errStatus, "http1.invalid_characters", "Empty header name");
    const ne = pos++;
    // OWS, field-value, OWS
    while (pos < end && ((b = buf[pos]) === SP || b === HT)) pos++;
    const vs = pos;
    while (pos < end && table[buf[pos]] === 1) pos++;
    if (pos >= end) return incomplete(ls, count);
    b = buf[pos];
    if (b === CR) {
      if (pos + 1 >= end) return incomplete(ls, count);
      if (buf[pos + 1] !== LF) throw new H1ParseError(errStatus, "http1.invalid_characters", "Bare CR");
    } else if (b !== LF) {
      throw new H1ParseError(errStatus, "http1.invalid_characters", "Invalid header value character");
    } else if (strict) {
      throw new H1ParseError(errStatus, "http1.codec_error", "Bare LF line ending");
    }
    let ve = pos;
    while (ve > vs && ((b = buf[ve - 1]) === SP || b === HT)) ve--;
    pos += buf[pos] === CR ? 2 : 1;
    if (count >= maxCount) {
      throw new H1ParseError(tooManyStatus, "http1.too_many_headers", "Too many headers");
    }
    let o = count * FIELD_STRIDE;
    if (o + FIELD_STRIDE > fields.length) {
      const grown = new Int32Array(fields.length * 2);
      grown.set(fields);
      scan.fields = fields = grown;
    }
    const known = lookupKnownName(buf, ls, ne);
    fields[o++] = ls;
    fields[o++] = ne;
    fields[o++] = vs;
    fields[o++] = ve;
    fields[o] = known >= 0 ? known : (tokenBits & 2) !== 0 ? KIND_MIXED : KIND_LOWER;
    count++;
  }
  scan.count = count;
  return pos;
}

function incomplete(lineStart: number, count: number): number {
  scan.lastLineStart = lineStart;
  scan.count = count;
  return -1;
}

/**
 * Builds a HeaderMap from the last scan: `head` is the byte string of [base, ...). `contentLength` is
 * used for KIND_CL_NORMALIZED fields.
 */
export function buildHeaders(head: string, base: number, contentLength: number): HeaderMap {
  const map = new HeaderMap();
  const fields = scan.fields;
  const n = scan.count * FIELD_STRIDE;
  for (let o = 0; o < n; o += FIELD_STRIDE) {
    const kind = fields[o + 4];
    if (kind >= 0) {
      map.addLower(KNOWN_NAMES[kind], head.slice(fields[o + 2] - base, fields[o + 3] - base));
    } else if (kind === KIND_LOWER) {
      map.addLower(
        head.slice(fields[o] - base, fields[o + 1] - base),
        head.slice(fields[o + 2] - base, fields[o + 3] - base),
      );
    } else if (kind === KIND_MIXED) {
      map.addLower(
        head.slice(fields[o] - base, fields[o + 1] - base).toLowerCase(),
        head.slice(fields[o + 2] - base, fields[o + 3] - base),
      );
    } else if (kind === KIND_CL_NORMALIZED) {
      map.addLower(KNOWN_NAMES[K_CONTENT_LENGTH], String(contentLength));
    }
  }
  return map;
}

/** Set by parseContentLength: true when the value was a comma list (to be normalized). */
export const clInfo = { list: false };

/**
 * Parses a Content-Length value in [s, e): digits, or a comma list of identical numbers. Returns the
 * number, or -1 when invalid (empty, non-digit, differing list members, above 2^53 - 1).
 */
export function parseContentLength(buf: Uint8Array, s: number, e: number): number {
  let value = -1;
  let i = s;
  clInfo.list = false;
  for (;;) {
    let n = -1;
    while (i < e) {
      const b = buf[i];
      if (b < 48 || b > 57) break;
      n = (n < 0 ? 0 : n) * 10 + (b - 48);
      if (n > Number.MAX_SAFE_INTEGER) return -1;
      i++;
    }
    if (n < 0) return -1;
    if (value >= 0) {
      if (n !== value) return -1;
      clInfo.list = true;
    }
    value = n;
    while (i < e && (buf[i] === SP || buf[i] === HT)) i++;
    if (i === e) return value;
    if (buf[i] !== 44) return -1;
    i++;
    while (i < e && (buf[i] === SP || buf[i] === HT)) i++;
  }
}

/** Connection token bit: close. */
export const CONN_CLOSE = 1;
/** Connection token bit: keep-alive. */
export const CONN_KEEP_ALIVE = 2;
/** Connection token bit: upgrade. */
export const CONN_UPGRADE = 4;

const B_CLOSE = lowerBytes("close");
const B_KEEP_ALIVE = lowerBytes("keep-alive");
const B_UPGRADE = lowerBytes("upgrade");

/** Returns CONN_* bits for the comma-separated tokens of a Connection value in [s, e). */
export function connectionTokens(buf: Uint8Array, s: number, e: number): number {
  let bits = 0;
  let i = s;
  while (i < e) {
    while (i < e && (buf[i] === SP || buf[i] === HT || buf[i] === 44)) i++;
    const ts = i;
    while (i < e && buf[i] !== 44) i++;
    let te = i;
    while (te > ts && (buf[te - 1] === SP || buf[te - 1] === HT)) te--;
    const len = te - ts;
    if (len === 5 && bytesEqualLower(buf, ts, te, B_CLOSE)) bits |= CONN_CLOSE;
    else if (len === 10 && bytesEqualLower(buf, ts, te, B_KEEP_ALIVE)) bits |= CONN_KEEP_ALIVE;
    else if (len === 7 && bytesEqualLower(buf, ts, te, B_UPGRADE)) bits |= CONN_UPGRADE;
  }
  return bits;
}

const B_CHUNKED = lowerBytes("chunked");
const B_100_CONTINUE = lowerBytes("100-continue");

/** Framing facts of the last `readFraming` call (module scratch; read right after the call). */
export const framing = {
  /** Declared body length, -1 when absent. */
  contentLength: -1,
  /** Number of Transfer-Encoding lines. */
  teCount: 0,
  /** True when the last Transfer-Encoding value is exactly "chunked". */
  teChunked: false,
  /** CONN_* bits of every Connection value. */
  conn: 0,
  /** Offset in `scan.fields` of the last Upgrade line, -1 when none. */
  upgradeIdx: -1,
  /** Offset in `scan.fields` of the Host line (requests), -1 when none. */
  hostIdx: -1,
  /** An "Expect: 100-continue" line was seen (requests). */
  expect100: false,
};

/**
 * Reads the framing headers of the last scan (shared by the request and response parsers): Content-Length
 * (validated; identical duplicates and lists merged, marking fields KIND_SKIP / KIND_CL_NORMALIZED),
 * Transfer-Encoding, Connection, Upgrade, and for requests Host (one only) and Expect. Errors are
 * H1ParseError with `errStatus`; results are in `framing`.
 */
export function readFraming(buf: Uint8Array, request: boolean, errStatus: number): void {
  const fields = scan.fields;
  const n = scan.count * FIELD_STRIDE;
  const last = request ? K_EXPECT : K_UPGRADE;
  const first = request ? K_HOST : K_CONTENT_LENGTH;
  let contentLength = -1;
  let teCount = 0;
  let teChunked = false;
  let conn = 0;
  let upgradeIdx = -1;
  let hostIdx = -1;
  let expect100 = false;
  for (let o = 0; o < n; o += FIELD_STRIDE) {
    const kind = fields[o + 4];
    if (kind < first || kind > last) continue;
    const vs = fields[o + 2];
    const ve = fields[o + 3];
    if (kind === K_CONTENT_LENGTH) {
      const cl = parseContentLength(buf, vs, ve);
      if (cl < 0) throw new H1ParseError(errStatus, "http1.codec_error", "Invalid Content-Length");
      if (contentLength >= 0) {
        if (cl !== contentLength) {
          throw new H1ParseError(errStatus, "http1.codec_error", "Conflicting Content-Length values");
        }
        fields[o + 4] = KIND_SKIP;
      } else {
        contentLength = cl;
        if (clInfo.list) fields[o + 4] = KIND_CL_NORMALIZED;
      }
    } else if (kind === K_TRANSFER_ENCODING) {
      teCount++;
      teChunked = bytesEqualLower(buf, vs, ve, B_CHUNKED);
    } else if (kind === K_CONNECTION) {
      conn |= connectionTokens(buf, vs, ve);
    } else if (kind === K_UPGRADE) {
      upgradeIdx = o;
    } else if (kind === K_HOST) {
      if (hostIdx >= 0) throw new H1ParseError(errStatus, "http1.codec_error", "Multiple Host headers");
      hostIdx = o;
    } else {
      expect100 = bytesEqualLower(buf, vs, ve, B_100_CONTINUE);
    }
  }
  framing.contentLength = contentLength;
  framing.teCount = teCount;
  framing.teChunked = teChunked;
  framing.conn = conn;
  framing.upgradeIdx = upgradeIdx;
  framing.hostIdx = hostIdx;
  framing.expect100 = expect100;
}

/**
 * Checks chunked framing after `readFraming` (and after the caller's own Transfer-Encoding rules): one
 * "chunked" coding only (else `unsupportedStatus`), never together with Content-Length (`errStatus`).
 */
export function checkChunkedFraming(errStatus: number, unsupportedStatus: number): void {
  if (framing.teCount === 0) return;
  if (framing.teCount > 1 || !framing.teChunked) {
    throw new H1ParseError(
      unsupportedStatus,
      "http1.invalid_transfer_encoding",
      "Unsupported Transfer-Encoding",
    );
  }
  if (framing.contentLength >= 0) {
    throw new H1ParseError(
      errStatus,
      "http1.content_length_and_chunked_not_allowed",
      "Both Content-Length and Transfer-Encoding",
    );
  }
}
