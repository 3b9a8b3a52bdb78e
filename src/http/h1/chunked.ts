/**
 * Incremental decoder of the chunked transfer coding (RFC 9112 7.1). It never copies body bytes: each
 * `next` call reports one data slice of the caller's buffer, a need for more bytes, or the end with trailers.
 */
import type { HeaderMap } from "../headers.ts";
import { CR, decodeBytes, HT, LF, SP } from "./chars.ts";
import { buildHeaders, findHeadEnd, scan, scanFields } from "./fields.ts";
import { type H1Limits, H1ParseError } from "./types.ts";

/** Kind of a ChunkResult. */
export type ChunkKind = "data" | "need_more" | "done";

/** The reused result of ChunkedDecoder.next. */
export class ChunkResult {
  /** "data": body bytes in [start, end); "need_more": feed more bytes; "done": body complete. */
  kind: ChunkKind = "need_more";
  /** Start of the data slice (kind "data"). */
  start = 0;
  /** End of the data slice (kind "data"). */
  end = 0;
  /** Bytes up to this offset are consumed; keep [consumed, end) and call again with more appended. */
  consumed = 0;
  /** Parsed trailers (kind "done"), or null when there were none. */
  trailers: HeaderMap | null = null;
}

const S_SIZE = 0;
const S_SIZE_WS = 1;
const S_EXT = 2;
const S_SIZE_LF = 3;
const S_DATA = 4;
const S_DATA_CR = 5;
const S_DATA_LF = 6;
const S_TRAILERS = 7;
const S_DONE = 8;

/** Value of a hex digit byte, or -1. */
function hexValue(b: number): number {
  if (b >= 48 && b <= 57) return b - 48;
  const l = b | 0x20;
  if (l >= 97 && l <= 102) return l - 87;
  return -1;
}

/**
 * Stateful chunked-body decoder, one per message. Loop `next(buf, pos, end)` with `pos = result.consumed`
 * (after handling "data") until it answers "need_more" (read more) or "done". Bad framing throws
 * H1ParseError (400, or `errorStatus`); trailers over the limits throw 431 (or `errorStatus`).
 */
export class ChunkedDecoder {
  #limits: H1Limits;
  #errorStatus: number;
  #state = S_SIZE;
  #remaining = 0;
  #digits = 0;
  #trailerScanned = 0;
  #result = new ChunkResult();

  /** Creates a decoder; `errorStatus` overrides 400/431 (e.g. 502 when decoding an upstream response). */
  constructor(limits: H1Limits, errorStatus?: number) {
    this.#limits = limits;
    this.#errorStatus = errorStatus ?? 0;
  }

  /** True once the terminating chunk and trailers were consumed. */
  get done(): boolean {
    return this.#state === S_DONE;
  }

  /** Resets the decoder for another message. */
  reset(): void {
    this.#state = S_SIZE;
    this.#remaining = 0;
    this.#digits = 0;
    this.#trailerScanned = 0;
  }

  #fail(message: string): never {
    throw new H1ParseError(this.#errorStatus || 400, "http1.codec_error", message);
  }

  /** Decodes from buf[start, end); returns the reused result (valid until the next call). */
  next(buf: Uint8Array, start: number, end: number): ChunkResult {
    const r = this.#result;
    r.trailers = null;
    let p = start;
    let state = this.#state;
    while (p < end) {
      const b = buf[p];
      switch (state) {
        case S_SIZE: {
          const v = hexValue(b);
          if (v >= 0) {
            if (++this.#digits > 16) this.#fail("Chunk size too long");
            const size = this.#remaining * 16 + v;
            if (size > Number.MAX_SAFE_INTEGER) this.#fail("Chunk size too large");
            this.#remaining = size;
            p++;
            break;
          }
          if (this.#digits === 0) this.#fail("Invalid chunk size");
          if (b === CR) state = S_SIZE_LF;
          else if (b === SP || b === HT) state = S_SIZE_WS;
          else if (b === 59) state = S_EXT;
          else this.#fail("Invalid chunk size");
          p++;
          break;
        }
        case S_SIZE_WS:
          if (b === 59) state = S_EXT;
          else if (b === CR) state = S_SIZE_LF;
          else if (b !== SP && b !== HT) this.#fail("Invalid chunk size line");
          p++;
          break;
        case S_EXT:
          // chunk-ext is ignored; only reject what could desynchronize framing
          while (p < end) {
            const c = buf[p];
            if (c === CR) {
              state = S_SIZE_LF;
              p++;
              break;
            }
            if ((c < 0x20 && c !== HT) || c === 0x7f) this.#fail("Invalid chunk extension character");
            p++;
          }
          break;
        case S_SIZE_LF:
          if (b !== LF) this.#fail("Missing LF after chunk size");
          p++;
          this.#digits = 0;
          if (this.#remaining === 0) {
            state = S_TRAILERS;
            this.#trailerScanned = 0;
            this.#state = state;
            return this.#trailers(buf, p, end);
          }
          state = S_DATA;
          break;
        case S_DATA: {
          const avail = end - p;
          const take = avail < this.#remaining ? avail : this.#remaining;
          this.#remaining -= take;
          this.#state = this.#remaining === 0 ? S_DATA_CR : S_DATA;
          r.kind = "data";
          r.start = p;
          r.end = p + take;
          r.consumed = p + take;
          return r;
        }
        case S_DATA_CR:
          if (b !== CR) this.#fail("Missing CRLF after chunk data");
          state = S_DATA_LF;
          p++;
          break;
        case S_DATA_LF:
          if (b !== LF) this.#fail("Missing CRLF after chunk data");
          state = S_SIZE;
          p++;
          break;
        case S_TRAILERS:
          this.#state = state;
          return this.#trailers(buf, p, end);
        default: // S_DONE
          r.kind = "done";
          r.consumed = p;
          return r;
      }
    }
    this.#state = state;
    r.kind = state === S_DONE ? "done" : "need_more";
    r.consumed = p;
    return r;
  }

  /** Handles the trailer section starting at `p` (not consumed until complete). */
  #trailers(buf: Uint8Array, p: number, end: number): ChunkResult {
    const r = this.#result;
    const limits = this.#limits;
    const avail = end - p;
    if (avail >= 1 && buf[p] === LF) this.#fail("Bare LF in trailers");
    if (avail >= 2 && buf[p] === CR) {
      if (buf[p + 1] !== LF) this.#fail("Bare CR in trailers");
      this.#state = S_DONE;
      r.kind = "done";
      r.consumed = p + 2;
      return r;
    }
    const sectionEnd = avail < 2
      ? -1
      : findHeadEnd(buf, p + this.#trailerScanned, end, true, this.#errorStatus || 400);
    if (sectionEnd < 0) {
      if (avail > limits.maxHeadersBytes) this.#tooLarge();
      if (avail >= 2) this.#trailerScanned = scan.lastLineStart - p;
      r.kind = "need_more";
      r.consumed = p;
      return r;
    }
    if (sectionEnd - p > limits.maxHeadersBytes) this.#tooLarge();
    scanFields(
      buf,
      p,
      sectionEnd,
      limits.maxHeadersCount,
      true,
      this.#errorStatus || 400,
      this.#errorStatus || 431,
    );
    this.#state = S_DONE;
    r.kind = "done";
    r.consumed = sectionEnd;
    r.trailers = buildHeaders(decodeBytes(buf, p, sectionEnd), p, -1);
    return r;
  }

  #tooLarge(): never {
    throw new H1ParseError(this.#errorStatus || 431, "http1.headers_too_large", "Trailers too large");
  }
}
