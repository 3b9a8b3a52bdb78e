/**
 * Shared types of the HTTP/1.1 codec: the parse error, limits and the parsed request/response heads.
 */
import type { HeaderMap } from "../headers.ts";

/**
 * Thrown by the parsers on malformed input. `status` is the local reply code for a downstream request
 * (400, 431, 501); response parsing uses 502. `details` is an Envoy-style response code detail.
 */
export class H1ParseError extends Error {
  /** HTTP status the caller should answer with (or 502 for upstream responses). */
  readonly status: number;
  /** Envoy-style response code details, e.g. "http1.codec_error". */
  readonly details: string;

  /** Builds the error; `message` defaults to `details`. */
  constructor(status: number, details: string, message?: string) {
    super(message ?? details);
    this.name = "H1ParseError";
    this.status = status;
    this.details = details;
  }
}

/** Thrown by the encoders when a method, path, header name or value would break the framing. */
export class H1EncodeError extends H1ParseError {
  /** Builds the error with status 500. */
  constructor(details: string, message?: string) {
    super(500, details, message);
    this.name = "H1EncodeError";
  }
}

/** Size limits applied while parsing a head or trailer section (Envoy: 60 KiB and 100 headers). */
export interface H1Limits {
  /** Maximum bytes of the whole head (start line, header lines and the blank line). */
  maxHeadersBytes: number;
  /** Maximum number of header lines. */
  maxHeadersCount: number;
}

/**
 * Optional per-connection scan progress for the head parsers: how many bytes after `start` are known to
 * hold no end of head. The parser updates it on an incomplete head and resets it to 0 on success, so a
 * head that trickles in is scanned once. Offsets are relative to `start`, so the caller may compact.
 */
export interface HeadScanState {
  /** Bytes after `start` already scanned (always at a line start). */
  scanned: number;
}

/** A parsed HTTP/1.x request head. */
export interface RequestHead {
  /** Method token as sent (case-sensitive). */
  method: string;
  /** The raw request-target. */
  target: string;
  /** Origin-form path with query ("/" for an absolute-form target without path, "*" for OPTIONS *, "" for CONNECT). */
  path: string;
  /** Authority of an absolute-form target or of a CONNECT authority-form target, else "". */
  absoluteHost: string;
  /** Lowercase scheme of an absolute-form target ("http" or "https"), else "". */
  absoluteScheme: string;
  /** 0 for HTTP/1.0, 1 for HTTP/1.1. */
  versionMinor: 0 | 1;
  /** Header lines: lowercase names, values trimmed of OWS; duplicate identical content-length merged. */
  headers: HeaderMap;
  /** Offset just after the blank line ending the head. */
  headEnd: number;
  /** Declared body length, -1 when absent. */
  contentLength: number;
  /** True when the body is chunked. */
  chunked: boolean;
  /** Whether the connection may be reused after this request. */
  keepAlive: boolean;
  /** Lowercased Upgrade value when Connection carries the "upgrade" token, else "". */
  upgrade: string;
  /** True for an HTTP/1.1 "Expect: 100-continue". */
  expectContinue: boolean;
  /** The Host header value, or "". */
  host: string;
}

/** A parsed HTTP/1.x response head. */
export interface ResponseHead {
  /** Three-digit status code. */
  status: number;
  /** Reason phrase as sent (may be empty). */
  reason: string;
  /** 0 for HTTP/1.0, 1 for HTTP/1.1. */
  versionMinor: 0 | 1;
  /** Header lines: lowercase names, values trimmed of OWS. */
  headers: HeaderMap;
  /** Offset just after the blank line ending the head. */
  headEnd: number;
  /** Declared body length, -1 when absent. */
  contentLength: number;
  /** True when the body is chunked. */
  chunked: boolean;
  /** Whether the connection may be reused after this response (ignoring close-delimited bodies). */
  keepAlive: boolean;
  /** Lowercased Upgrade value of a 101 response, else "". */
  upgrade: string;
}
