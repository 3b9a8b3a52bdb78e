/**
 * Byte-level building blocks of the HTTP/1 codec: character classes, the interned table of common header
 * names and the one-shot decoding of a head into a byte string (one char per byte).
 */
import { Buffer } from "node:buffer";

/** Carriage return. */
export const CR = 13;
/** Line feed. */
export const LF = 10;
/** Space. */
export const SP = 32;
/** Horizontal tab. */
export const HT = 9;
/** Colon. */
export const COLON = 58;

/** RFC 9110 tchar bytes: 0 not a tchar, 1 a tchar, 3 an uppercase letter (bit 2 = needs lowercasing). */
export const TOKEN: Uint8Array = (() => {
  const t = new Uint8Array(256);
  const extra = "!#$%&'*+-.^_`|~";
  for (let i = 0; i < extra.length; i++) t[extra.charCodeAt(i)] = 1;
  for (let c = 48; c <= 57; c++) t[c] = 1;
  for (let c = 65; c <= 90; c++) t[c] = 3;
  for (let c = 97; c <= 122; c++) t[c] = 1;
  return t;
})();

/**
 * Field-value bytes, strict (requests, trailers): 1 allowed (VCHAR, SP, HTAB, obs-text), 0 anything else
 * (CR, LF, other CTLs, DEL), which ends the value or is an error.
 */
export const VALUE_STRICT: Uint8Array = (() => {
  const t = new Uint8Array(256);
  for (let c = 0x20; c < 0x7f; c++) t[c] = 1;
  t[HT] = 1;
  for (let c = 0x80; c < 0x100; c++) t[c] = 1;
  return t;
})();

/** Field-value byte classes for upstream responses: like VALUE_STRICT but CTLs other than NUL/CR/LF pass. */
export const VALUE_LENIENT: Uint8Array = (() => {
  const t = VALUE_STRICT.slice();
  for (let c = 1; c < 0x20; c++) if (c !== CR && c !== LF) t[c] = 1;
  t[0x7f] = 1;
  return t;
})();

/** Common header names; the first six have fixed indices the parsers switch on. */
export const KNOWN_NAMES: readonly string[] = [
  "host",
  "content-length",
  "transfer-encoding",
  "connection",
  "upgrade",
  "expect",
  "user-agent",
  "accept",
  "accept-language",
  "accept-encoding",
  "accept-charset",
  "content-type",
  "cookie",
  "referer",
  "origin",
  "authorization",
  "cache-control",
  "pragma",
  "if-none-match",
  "if-modified-since",
  "if-match",
  "if-unmodified-since",
  "if-range",
  "range",
  "te",
  "trailer",
  "keep-alive",
  "proxy-connection",
  "proxy-authorization",
  "x-forwarded-for",
  "x-forwarded-proto",
  "x-forwarded-host",
  "x-forwarded-port",
  "x-forwarded-client-cert",
  "x-real-ip",
  "x-request-id",
  "x-client-trace-id",
  "x-envoy-internal",
  "x-envoy-external-address",
  "x-envoy-expected-rq-timeout-ms",
  "x-envoy-upstream-service-time",
  "x-envoy-attempt-count",
  "x-envoy-original-path",
  "x-envoy-max-retries",
  "x-envoy-retry-on",
  "x-envoy-retry-grpc-on",
  "x-envoy-upstream-rq-timeout-ms",
  "x-envoy-upstream-rq-per-try-timeout-ms",
  "x-envoy-hedge-on-per-try-timeout",
  "x-envoy-decorator-operation",
  "x-envoy-downstream-service-cluster",
  "x-envoy-downstream-service-node",
  "x-envoy-force-trace",
  "x-envoy-ratelimited",
  "x-envoy-overloaded",
  "x-envoy-degraded",
  "x-envoy-immediate-health-check-fail",
  "x-envoy-upstream-healthchecked-cluster",
  "x-envoy-retriable-status-codes",
  "x-envoy-retriable-header-names",
  "x-envoy-is-timeout-retry",
  "x-b3-traceid",
  "x-b3-spanid",
  "x-b3-parentspanid",
  "x-b3-sampled",
  "x-b3-flags",
  "x-ot-span-context",
  "traceparent",
  "tracestate",
  "grpc-timeout",
  "grpc-encoding",
  "grpc-accept-encoding",
  "grpc-status",
  "grpc-message",
  "dnt",
  "sec-fetch-site",
  "sec-fetch-mode",
  "sec-fetch-dest",
  "sec-fetch-user",
  "sec-ch-ua",
  "sec-ch-ua-mobile",
  "sec-ch-ua-platform",
  "upgrade-insecure-requests",
  "sec-websocket-key",
  "sec-websocket-version",
  "sec-websocket-extensions",
  "sec-websocket-protocol",
  "sec-websocket-accept",
  "date",
  "server",
  "content-encoding",
  "content-language",
  "content-range",
  "content-disposition",
  "content-location",
  "etag",
  "last-modified",
  "expires",
  "age",
  "vary",
  "location",
  "set-cookie",
  "www-authenticate",
  "proxy-authenticate",
  "retry-after",
  "accept-ranges",
  "access-control-allow-origin",
  "access-control-allow-credentials",
  "access-control-allow-methods",
  "access-control-allow-headers",
  "access-control-expose-headers",
  "access-control-max-age",
  "access-control-request-method",
  "access-control-request-headers",
  "strict-transport-security",
  "x-content-type-options",
  "x-frame-options",
  "x-xss-protection",
  "content-security-policy",
  "alt-svc",
  "link",
  "via",
  "forwarded",
  "priority",
  "x-requested-with",
  "x-http-method-override",
  "x-amzn-trace-id",
  "x-correlation-id",
];

/** Index of "host" in KNOWN_NAMES. */
export const K_HOST = 0;
/** Index of "content-length" in KNOWN_NAMES. */
export const K_CONTENT_LENGTH = 1;
/** Index of "transfer-encoding" in KNOWN_NAMES. */
export const K_TRANSFER_ENCODING = 2;
/** Index of "connection" in KNOWN_NAMES. */
export const K_CONNECTION = 3;
/** Index of "upgrade" in KNOWN_NAMES. */
export const K_UPGRADE = 4;
/** Index of "expect" in KNOWN_NAMES. */
export const K_EXPECT = 5;

const KNOWN_BYTES: Uint8Array[] = KNOWN_NAMES.map((n) => new TextEncoder().encode(n));
const HASH_BITS = 10;
const HASH_MASK = (1 << HASH_BITS) - 1;
/** Open-addressed table: slot -> KNOWN_NAMES index + 1 (0 = empty). */
const HASH_TABLE = new Int16Array(1 << HASH_BITS);

/** Hash of a tchar name in [s, e) (e > s) from its length and lowercased first two and last two bytes. */
function nameHash(buf: Uint8Array, s: number, e: number): number {
  const len = e - s;
  let h = Math.imul(len, 0x9e3779b1) ^ (buf[s] | 0x20);
  h = Math.imul(h ^ (buf[s + (len > 1 ? 1 : 0)] | 0x20), 0x85ebca6b);
  h = Math.imul(h ^ (buf[e - 2 >= s ? e - 2 : s] | 0x20), 0xc2b2ae35);
  h ^= buf[e - 1] | 0x20;
  return (h ^ (h >>> 13) ^ (h >>> 22)) & HASH_MASK;
}

for (let k = 0; k < KNOWN_BYTES.length; k++) {
  const b = KNOWN_BYTES[k];
  let slot = nameHash(b, 0, b.length);
  while (HASH_TABLE[slot] !== 0) slot = (slot + 1) & HASH_MASK;
  HASH_TABLE[slot] = k + 1;
}

/**
 * Looks up a tchar header name in [s, e) ignoring case; returns its KNOWN_NAMES index or -1.
 * Comparing `byte | 0x20` is exact here because the caller already checked every byte is a tchar.
 */
export function lookupKnownName(buf: Uint8Array, s: number, e: number): number {
  const len = e - s;
  let slot = nameHash(buf, s, e);
  for (;;) {
    const k = HASH_TABLE[slot] - 1;
    if (k < 0) return -1;
    const kb = KNOWN_BYTES[k];
    if (kb.length === len) {
      let i = 0;
      while (i < len && (buf[s + i] | 0x20) === kb[i]) i++;
      if (i === len) return k;
    }
    slot = (slot + 1) & HASH_MASK;
  }
}

type SliceFn = (this: Uint8Array, start: number, end: number) => string;

/**
 * Node's Buffer#latin1Slice decodes bytes one to one and works on any Uint8Array; it is several times
 * faster than TextDecoder here (and TextDecoder's "latin1" is really windows-1252). Feature-checked at
 * load, with an exact fallback.
 */
const latin1Slice: SliceFn | null = (() => {
  const f = (Buffer.prototype as unknown as { latin1Slice?: SliceFn }).latin1Slice;
  if (typeof f !== "function") return null;
  try {
    const probe = new Uint8Array([0x41, 0xe9, 0x80, 0xff]);
    return f.call(probe, 1, 4) === "\u00e9\u0080\u00ff" ? f : null;
  } catch {
    return null;
  }
})();

/** Decodes [start, end) as a byte string: char code = byte value (exact Latin-1). */
export function decodeBytes(buf: Uint8Array, start: number, end: number): string {
  if (start >= end) return "";
  if (latin1Slice !== null) return latin1Slice.call(buf, start, end);
  let s = "";
  for (let i = start; i < end; i += 4096) {
    const j = i + 4096 < end ? i + 4096 : end;
    s += String.fromCharCode.apply(null, buf.subarray(i, j) as unknown as number[]);
  }
  return s;
}

/** True when [s, e) equals the lowercase ASCII `lower` ignoring ASCII case. */
export function bytesEqualLower(buf: Uint8Array, s: number, e: number, lower: Uint8Array): boolean {
  if (e - s !== lower.length) return false;
  for (let i = 0; i < lower.length; i++) {
    let b = buf[s + i];
    if (b >= 65 && b <= 90) b |= 0x20;
    if (b !== lower[i]) return false;
  }
  return true;
}

/** Lowercase ASCII bytes of `s`, for case-insensitive comparisons at config/module time. */
export function lowerBytes(s: string): Uint8Array {
  return new TextEncoder().encode(s.toLowerCase());
}
