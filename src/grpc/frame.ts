/**
 * gRPC length-prefixed message framing (1 byte compressed flag + 4 bytes big-endian length + message) and
 * status codes. Transport-independent: gRPC servers and clients over any HTTP/2 implementation use it.
 */

/** gRPC status codes. */
export const GrpcStatus = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
} as const;

/** Largest message accepted by `GrpcFrameDecoder` unless told otherwise (4 MiB, gRPC's default). */
export const DEFAULT_MAX_MESSAGE = 4 * 1024 * 1024;

/** Wraps one serialized message in a gRPC frame (uncompressed). */
export function encodeGrpcFrame(message: Uint8Array): Uint8Array {
  const out = new Uint8Array(5 + message.length);
  const len = message.length;
  out[1] = len >>> 24;
  out[2] = (len >>> 16) & 0xff;
  out[3] = (len >>> 8) & 0xff;
  out[4] = len & 0xff;
  out.set(message, 5);
  return out;
}

/** Splits a byte stream into gRPC messages; feed chunks with `push`, take whole messages from its result. */
export class GrpcFrameDecoder {
  #buf: Uint8Array = new Uint8Array(0);
  readonly #max: number;
  /** A decoder refusing messages over `maxMessage` bytes. */
  constructor(maxMessage = DEFAULT_MAX_MESSAGE) {
    this.#max = maxMessage;
  }
  /** Bytes held that do not yet form a whole frame. */
  get pending(): number {
    return this.#buf.length;
  }
  /** Adds `chunk`, returns the messages completed by it; throws on compressed frames or oversized messages. */
  push(chunk: Uint8Array): Uint8Array[] {
    let buf = chunk;
    if (this.#buf.length > 0) {
      buf = new Uint8Array(this.#buf.length + chunk.length);
      buf.set(this.#buf);
      buf.set(chunk, this.#buf.length);
    }
    const out: Uint8Array[] = [];
    let pos = 0;
    while (buf.length - pos >= 5) {
      if (buf[pos] !== 0) throw new RangeError("Compressed gRPC messages are not supported");
      const len = ((buf[pos + 1] << 24) >>> 0) + (buf[pos + 2] << 16) + (buf[pos + 3] << 8) + buf[pos + 4];
      if (len > this.#max) throw new RangeError(`gRPC message of ${len} bytes exceeds ${this.#max}`);
      if (buf.length - pos - 5 < len) break;
      out.push(buf.slice(pos + 5, pos + 5 + len));
      pos += 5 + len;
    }
    this.#buf = pos === buf.length ? new Uint8Array(0) : buf.slice(pos);
    return out;
  }
}

/** Percent-encodes a grpc-message trailer value as the gRPC spec asks (printable ASCII except %). */
export function encodeGrpcMessage(msg: string): string {
  let out = "";
  for (const b of new TextEncoder().encode(msg)) {
    out += b >= 0x20 && b <= 0x7e && b !== 0x25
      ? String.fromCharCode(b)
      : "%" + b.toString(16).toUpperCase().padStart(2, "0");
  }
  return out;
}
