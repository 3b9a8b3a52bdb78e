/**
 * HTTP/1.1 head encoders. A head is built as one string and encoded once (measured faster than
 * encodeInto a scratch buffer or byte-wise writes, see codec_bench.ts). Header strings are byte strings:
 * chars up to 0xFF become one byte each; a head holding chars above 0xFF is encoded as UTF-8.
 * Names must be tokens and values free of NUL/CR/LF, otherwise H1EncodeError is thrown (no injection).
 */
import type { HeaderMap } from "../headers.ts";
import { TOKEN } from "./chars.ts";
import { statusLine } from "./status_text.ts";
import { H1EncodeError } from "./types.ts";

const encoder = new TextEncoder();
const TOKEN_RE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const BAD_VALUE_RE = /[\0\r\n]/;
const BAD_TARGET_RE = /[\0-\x20\x7f]/;

/** Options of encodeRequestHead. */
export interface RequestHeadOptions {
  /** Written first as "host: <authority>" when set (HeaderMap holds no pseudo-headers). */
  authority?: string;
  /** 1 (default) for HTTP/1.1, 0 for HTTP/1.0. */
  versionMinor?: 0 | 1;
}

/** True when `s` is a non-empty token (checked per char: faster than a regex for short strings). */
function isToken(s: string): boolean {
  const n = s.length;
  if (n === 0) return false;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c > 0x7f || TOKEN[c] === 0) return false;
  }
  return true;
}

/** True when `s` holds no NUL, CR or LF. */
function isValidValue(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c <= 13 && (c === 13 || c === 10 || c === 0)) return false;
  }
  return true;
}

function appendHeaders(s: string, headers: HeaderMap): string {
  const names = headers.names;
  const values = headers.values;
  for (let i = 0; i < names.length; i++) {
    const name = names[i];
    const value = values[i];
    if (!TOKEN_RE.test(name)) {
      throw new H1EncodeError("http1.invalid_header_name", `Invalid header name: ${name}`);
    }
    if (BAD_VALUE_RE.test(value)) {
      throw new H1EncodeError("http1.invalid_header_value", `Invalid value for header: ${name}`);
    }
    s += name + ": " + value + "\r\n";
  }
  return s + "\r\n";
}

/** Encodes a head string: one byte per char when all chars are <= 0xFF, else UTF-8. */
export function encodeHeadString(s: string): Uint8Array {
  const out = encoder.encode(s);
  if (out.length === s.length) return out; // pure ASCII
  return latin1OrUtf8(s, out);
}

function latin1OrUtf8(s: string, utf8: Uint8Array): Uint8Array {
  const bytes = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 0xff) return utf8;
    bytes[i] = c;
  }
  return bytes;
}

/** Builds the request head string (validated). */
export function requestHeadString(
  method: string,
  path: string,
  headers: HeaderMap,
  opts?: RequestHeadOptions,
): string {
  if (!TOKEN_RE.test(method)) throw new H1EncodeError("http1.invalid_method", "Invalid method");
  if (path.length === 0 || BAD_TARGET_RE.test(path)) {
    throw new H1EncodeError("http1.invalid_url", "Invalid path");
  }
  let s = method + " " + path + (opts?.versionMinor === 0 ? " HTTP/1.0\r\n" : " HTTP/1.1\r\n");
  const authority = opts?.authority;
  if (authority !== undefined && authority !== "") {
    if (BAD_VALUE_RE.test(authority)) {
      throw new H1EncodeError("http1.invalid_header_value", "Invalid authority");
    }
    s += "host: " + authority + "\r\n";
  }
  return appendHeaders(s, headers);
}

/** Encodes "METHOD path HTTP/1.1" plus headers (host first when `opts.authority`); throws H1EncodeError. */
export function encodeRequestHead(
  method: string,
  path: string,
  headers: HeaderMap,
  opts?: RequestHeadOptions,
): Uint8Array {
  return encodeHeadString(requestHeadString(method, path, headers, opts));
}

/** Builds the response head string (validated). */
export function responseHeadString(status: number, headers: HeaderMap, versionMinor: 0 | 1 = 1): string {
  const line = statusLine(status, versionMinor);
  if (line === undefined) throw new H1EncodeError("http1.invalid_status", `Invalid status: ${status}`);
  return appendHeaders(line, headers);
}

/** Encodes "HTTP/1.1 <status> <reason>" plus headers; throws H1EncodeError on invalid input. */
export function encodeResponseHead(status: number, headers: HeaderMap, versionMinor: 0 | 1 = 1): Uint8Array {
  return encodeHeadString(responseHeadString(status, headers, versionMinor));
}

/**
 * Encodes a response head and a small body into one buffer (one write). The caller sets content-length
 * (or chunked framing) in `headers`.
 */
export function encodeResponse(
  status: number,
  headers: HeaderMap,
  body: Uint8Array | null,
  versionMinor: 0 | 1 = 1,
): Uint8Array {
  const s = responseHeadString(status, headers, versionMinor);
  if (body === null || body.length === 0) return encodeHeadString(s);
  const out = new Uint8Array(s.length + body.length);
  const r = encoder.encodeInto(s, out);
  if (r.read === s.length && r.written === s.length) {
    out.set(body, s.length);
    return out;
  }
  return concatBytes(encodeHeadString(s), body);
}

/** Concatenates byte arrays into one new buffer. */
export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (let i = 0; i < parts.length; i++) n += parts[i].length;
  const out = new Uint8Array(n);
  let o = 0;
  for (let i = 0; i < parts.length; i++) {
    out.set(parts[i], o);
    o += parts[i].length;
  }
  return out;
}

const CHUNK_HEADER_CACHE_MAX = 65536;
const chunkHeaderCache: (Uint8Array | undefined)[] = [];

/** "<hex len>\r\n" for a chunk of `len` bytes; cached (shared, do not mutate) for len <= 65536. */
export function chunkHeader(len: number): Uint8Array {
  if (len <= CHUNK_HEADER_CACHE_MAX) {
    const cached = chunkHeaderCache[len];
    if (cached !== undefined) return cached;
    const made = encoder.encode(len.toString(16) + "\r\n");
    chunkHeaderCache[len] = made;
    return made;
  }
  return encoder.encode(len.toString(16) + "\r\n");
}

/** CRLF closing every chunk's data (shared, do not mutate). */
export const CHUNK_END: Uint8Array = encoder.encode("\r\n");
/** The last chunk with no trailers: "0\r\n\r\n" (shared, do not mutate). */
export const LAST_CHUNK: Uint8Array = encoder.encode("0\r\n\r\n");

/** The pieces framing `data` as one chunk: [header, data, CRLF]; [] for empty data (it would end the body). */
export function encodeChunk(data: Uint8Array): Uint8Array[] {
  if (data.length === 0) return [];
  return [chunkHeader(data.length), data, CHUNK_END];
}

/** `data` framed as one chunk in a single new buffer (one write); empty for empty data. */
export function frameChunk(data: Uint8Array): Uint8Array {
  if (data.length === 0) return new Uint8Array(0);
  const head = chunkHeader(data.length);
  const out = new Uint8Array(head.length + data.length + 2);
  out.set(head, 0);
  out.set(data, head.length);
  out[out.length - 2] = 13;
  out[out.length - 1] = 10;
  return out;
}

/** The last chunk followed by `trailers` (validated) and the final CRLF; LAST_CHUNK when none. */
export function encodeLastChunk(trailers: HeaderMap | null): Uint8Array {
  if (trailers === null || trailers.size === 0) return LAST_CHUNK;
  return encodeHeadString(appendHeaders("0\r\n", trailers));
}
