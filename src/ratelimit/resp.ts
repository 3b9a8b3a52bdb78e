/**
 * RESP2 (the Redis protocol): command encoding as arrays of bulk strings and an incremental reply parser
 * that reports "incomplete" so the caller can wait for more bytes.
 */
import { utf8Length } from "../grpc/protobuf.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** An error reply (`-ERR ...`) from Redis; returned in place of the reply, not thrown by the parser. */
export class RedisReplyError extends Error {
  /** Wraps the error line `message`. */
  constructor(message: string) {
    super(message);
    this.name = "RedisReplyError";
  }
}

/** A parsed reply: simple/bulk string, integer, nil (null), array, or an error reply. */
export type RespValue = string | number | null | RedisReplyError | RespValue[];

/** A command argument. */
export type RespArg = string | number;

/** Appends the RESP form of one command to `out` (a string; encode once per batch). */
export function appendCommand(out: string, args: readonly RespArg[]): string {
  out += `*${args.length}\r\n`;
  for (const a of args) {
    const s = typeof a === "string" ? a : String(a);
    out += `$${utf8Length(s)}\r\n${s}\r\n`;
  }
  return out;
}

/** Encodes a batch of commands into bytes for one write. */
export function encodeCommands(cmds: readonly (readonly RespArg[])[]): Uint8Array {
  let s = "";
  for (const c of cmds) s = appendCommand(s, c);
  return encoder.encode(s);
}

/** Marker for "not enough bytes yet". */
export const INCOMPLETE: unique symbol = Symbol("incomplete");

/** Result of `parseReply`: the value and the offset after it, or INCOMPLETE. */
export type ParseResult = typeof INCOMPLETE | { value: RespValue; next: number };

function findCrlf(buf: Uint8Array, from: number, end: number): number {
  for (let i = from; i + 1 < end; i++) if (buf[i] === 13 && buf[i + 1] === 10) return i;
  return -1;
}

function parseIntAt(buf: Uint8Array, from: number, to: number): number {
  let neg = false;
  let i = from;
  if (buf[i] === 45) {
    neg = true;
    i++;
  }
  let n = 0;
  for (; i < to; i++) {
    const d = buf[i] - 48;
    if (d < 0 || d > 9) throw new RangeError("Bad integer in Redis reply");
    n = n * 10 + d;
  }
  return neg ? -n : n;
}

/** Parses one reply starting at `pos` of `buf[0, end)`; throws RangeError on a protocol violation. */
export function parseReply(buf: Uint8Array, pos: number, end: number): ParseResult {
  if (pos >= end) return INCOMPLETE;
  const crlf = findCrlf(buf, pos + 1, end);
  if (crlf < 0) return INCOMPLETE;
  const type = buf[pos];
  switch (type) {
    case 43: // +
      return { value: decoder.decode(buf.subarray(pos + 1, crlf)), next: crlf + 2 };
    case 45: // -
      return { value: new RedisReplyError(decoder.decode(buf.subarray(pos + 1, crlf))), next: crlf + 2 };
    case 58: // :
      return { value: parseIntAt(buf, pos + 1, crlf), next: crlf + 2 };
    case 36: { // $
      const len = parseIntAt(buf, pos + 1, crlf);
      if (len < 0) return { value: null, next: crlf + 2 };
      const start = crlf + 2;
      if (start + len + 2 > end) return INCOMPLETE;
      return { value: decoder.decode(buf.subarray(start, start + len)), next: start + len + 2 };
    }
    case 42: { // *
      const n = parseIntAt(buf, pos + 1, crlf);
      if (n < 0) return { value: null, next: crlf + 2 };
      const arr: RespValue[] = new Array(n);
      let p = crlf + 2;
      for (let i = 0; i < n; i++) {
        const r = parseReply(buf, p, end);
        if (r === INCOMPLETE) return INCOMPLETE;
        arr[i] = r.value;
        p = r.next;
      }
      return { value: arr, next: p };
    }
    default:
      throw new RangeError(`Unknown RESP type byte ${type}`);
  }
}
