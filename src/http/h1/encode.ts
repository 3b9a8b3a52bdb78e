/**
 * HTTP/1.1 head encoders. Heads are validated and written char by char straight into their exact-size
 * output, carved from the byte arena (measured faster than building a string and encoding it, and a new
 * ArrayBuffer per head costs more than the whole encoding, see codec_bench.ts).
 * Header strings are byte strings: chars up to 0xFF become one byte each; a head holding chars above
 * 0xFF is encoded as UTF-8 instead. Names must be tokens and values free of NUL/CR/LF, otherwise
 * H1EncodeError is thrown (no header injection).
 */
import type { HeaderMap } from "../headers.ts";
import { allocBytes } from "./byte_arena.ts";
import { TOKEN } from "./chars.ts";
import { statusLine } from "./status_text.ts";
import { H1EncodeError } from "./types.ts";

const encoder = new TextEncoder();

/** Options of encodeRequestHead. */
export interface RequestHeadOptions {
  /** Written first as "host: <authority>" when set (HeaderMap holds no pseudo-headers). */
  authority?: string;
  /** 1 (default) for HTTP/1.1, 0 for HTTP/1.0. */
  versionMinor?: 0 | 1;
}

/** True when `s` is a non-empty token. */
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

/** True when `s` is a non-empty request-target without CTLs, SP or DEL. */
function isValidTarget(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c <= 0x20 || c === 0x7f) return false;
  }
  return true;
}

function badName(name: string): never {
  throw new H1EncodeError("http1.invalid_header_name", `Invalid header name: ${name}`);
}

function badValue(name: string): never {
  throw new H1EncodeError("http1.invalid_header_value", `Invalid value for header: ${name}`);
}

// ---- byte writer: validates and writes chars straight into the output (sized exactly: one byte per
// char unless a char is above 0xFF, which sets `wide` and the head is redone as UTF-8) ----

/** Set when a written string held a char above 0xFF: the head is redone as a UTF-8 string. */
let wide = false;

function writeName(out: Uint8Array, s: string, o: number): number {
  const n = s.length;
  if (n === 0) badName(s);
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c > 0x7f || TOKEN[c] === 0) badName(s);
    out[o++] = c;
  }
  return o;
}

function writeValue(out: Uint8Array, s: string, o: number, name: string): number {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c <= 13 && (c === 13 || c === 10 || c === 0)) badValue(name);
    if (c > 0xff) wide = true;
    out[o++] = c;
  }
  return o;
}

function writeLatin1(out: Uint8Array, s: string, o: number): number {
  for (let i = 0; i < s.length; i++) out[o++] = s.charCodeAt(i);
  return o;
}

function headersSize(headers: HeaderMap): number {
  const names = headers.names;
  const values = headers.values;
  let n = 2;
  for (let i = 0; i < names.length; i++) n += names[i].length + values[i].length + 4;
  return n;
}

function writeHeaders(out: Uint8Array, headers: HeaderMap, o: number): number {
  const names = headers.names;
  const values = headers.values;
  for (let i = 0; i < names.length; i++) {
    const name = names[i];
    o = writeName(out, name, o);
    out[o++] = 58;
    out[o++] = 32;
    o = writeValue(out, values[i], o, name);
    out[o++] = 13;
    out[o++] = 10;
  }
  out[o++] = 13;
  out[o++] = 10;
  return o;
}

/** Writes a response head followed by `extra` spare bytes into a new arena buffer (check `wide` after). */
function writeResponseHead(
  status: number,
  headers: HeaderMap,
  versionMinor: 0 | 1,
  extra: number,
): Uint8Array {
  const line = statusLineBytes(status, versionMinor);
  const out = allocBytes(line.length + headersSize(headers) + extra);
  out.set(line, 0);
  wide = false;
  writeHeaders(out, headers, line.length);
  return out;
}

const statusLineCache: (Uint8Array | undefined)[][] = [[], []];

function statusLineBytes(status: number, versionMinor: 0 | 1): Uint8Array {
  const cache = statusLineCache[versionMinor];
  let b = cache[status];
  if (b === undefined) {
    const line = statusLine(status, versionMinor);
    if (line === undefined) throw new H1EncodeError("http1.invalid_status", `Invalid status: ${status}`);
    b = encoder.encode(line);
    cache[status] = b;
  }
  return b;
}

// ---- string forms (validated), used for heads holding chars above 0xFF and by callers wanting text ----

function appendHeaders(s: string, headers: HeaderMap): string {
  const names = headers.names;
  const values = headers.values;
  for (let i = 0; i < names.length; i++) {
    const name = names[i];
    const value = values[i];
    if (!isToken(name)) badName(name);
    if (!isValidValue(value)) badValue(name);
    s += name + ": " + value + "\r\n";
  }
  return s + "\r\n";
}

/** Encodes a head string: one byte per char when all chars are <= 0xFF, else UTF-8. */
export function encodeHeadString(s: string): Uint8Array {
  const out = encoder.encode(s);
  if (out.length === s.length) return out; // pure ASCII
  const bytes = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 0xff) return out;
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
  if (!isToken(method)) throw new H1EncodeError("http1.invalid_method", "Invalid method");
  if (!isValidTarget(path)) throw new H1EncodeError("http1.invalid_url", "Invalid path");
  let s = method + " " + path + (opts?.versionMinor === 0 ? " HTTP/1.0\r\n" : " HTTP/1.1\r\n");
  const authority = opts?.authority;
  if (authority !== undefined && authority !== "") {
    if (!isValidValue(authority)) throw new H1EncodeError("http1.invalid_header_value", "Invalid authority");
    s += "host: " + authority + "\r\n";
  }
  return appendHeaders(s, headers);
}

/** Builds the response head string (validated). */
export function responseHeadString(status: number, headers: HeaderMap, versionMinor: 0 | 1 = 1): string {
  const line = statusLine(status, versionMinor);
  if (line === undefined) throw new H1EncodeError("http1.invalid_status", `Invalid status: ${status}`);
  return appendHeaders(line, headers);
}

/** Encodes "METHOD path HTTP/1.1" plus headers (host first when `opts.authority`); throws H1EncodeError. */
export function encodeRequestHead(
  method: string,
  path: string,
  headers: HeaderMap,
  opts?: RequestHeadOptions,
): Uint8Array {
  if (!isToken(method)) throw new H1EncodeError("http1.invalid_method", "Invalid method");
  if (!isValidTarget(path)) throw new H1EncodeError("http1.invalid_url", "Invalid path");
  const authority = opts?.authority ?? "";
  const size = method.length + path.length + 12 + (authority === "" ? 0 : authority.length + 8) +
    headersSize(headers);
  const out = allocBytes(size);
  wide = false;
  let o = writeLatin1(out, method, 0);
  out[o++] = 32;
  o = writeValue(out, path, o, ":path");
  o = writeLatin1(out, opts?.versionMinor === 0 ? " HTTP/1.0\r\n" : " HTTP/1.1\r\n", o);
  if (authority !== "") {
    o = writeLatin1(out, "host: ", o);
    o = writeValue(out, authority, o, "host");
    out[o++] = 13;
    out[o++] = 10;
  }
  o = writeHeaders(out, headers, o);
  if (wide) return encodeHeadString(requestHeadString(method, path, headers, opts));
  return o === size ? out : out.subarray(0, o);
}

/** Encodes "HTTP/1.1 <status> <reason>" plus headers; throws H1EncodeError on invalid input. */
export function encodeResponseHead(status: number, headers: HeaderMap, versionMinor: 0 | 1 = 1): Uint8Array {
  const out = writeResponseHead(status, headers, versionMinor, 0);
  if (wide) return encodeHeadString(responseHeadString(status, headers, versionMinor));
  return out;
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
  const n = body === null ? 0 : body.length;
  const out = writeResponseHead(status, headers, versionMinor, n);
  if (wide) {
    const head = encodeHeadString(responseHeadString(status, headers, versionMinor));
    return body === null ? head : concatBytes(head, body);
  }
  if (n > 0) out.set(body!, out.length - n);
  return out;
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
  const out = allocBytes(head.length + data.length + 2);
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
