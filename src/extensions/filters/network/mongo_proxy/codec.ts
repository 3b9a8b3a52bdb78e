/**
 * The Mongo wire protocol decoder of one direction of a connection: frames messages out of the bytes as they
 * arrive and parses each complete one into a `WireMessage` handed to a callback. Whole messages inside a read
 * are decoded in place (no copy); only the bytes of the current incomplete message are kept, growing with what
 * arrived and never past the message's declared length, itself bounded by `maxMessageBytes`.
 *
 * Parsed: OP_REPLY (1), OP_INSERT (2002), OP_QUERY (2004), OP_GET_MORE (2005), OP_KILL_CURSORS (2007),
 * OP_COMMAND (2010) and OP_COMMANDREPLY (2011) as Envoy does; OP_MSG (2013: section kinds 0 and 1, the
 * checksum flag, moreToCome) and OP_COMPRESSED (2012: its header; a message compressed with the noop compressor
 * is decoded as the message it holds). Any other opcode, a length out of bounds, or bytes that do not parse
 * exactly to the message's end throw `MongoDecodeError`.
 */
import { MongoDecodeError, readInt32 } from "./bson.ts";
import { OpCode, parseBody, WireMessage } from "./message.ts";

/** MongoDB's maxMessageSizeBytes: the default bound of one message. */
export const DEFAULT_MAX_MESSAGE_BYTES = 48_000_000;

/** Receives decoded messages (synchronously, in order). */
export interface MessageSink {
  /** Called once per complete message; may throw MongoDecodeError (a query it cannot classify). */
  onMessage(m: WireMessage): void;
}

/** Frames and parses one direction of a Mongo connection. */
export class MongoDecoder {
  readonly #sink: MessageSink;
  readonly #max: number;
  readonly #m = new WireMessage();
  /** The incomplete message's bytes, or null. */
  #part: Uint8Array | null = null;
  #have = 0;
  /** Its declared length once its first 4 bytes arrived, else 0. */
  #need = 0;

  constructor(sink: MessageSink, maxMessageBytes = DEFAULT_MAX_MESSAGE_BYTES) {
    this.#sink = sink;
    this.#max = maxMessageBytes;
  }

  /** Bytes held for the incomplete message. */
  get bufferedBytes(): number {
    return this.#part === null ? 0 : this.#part.length;
  }

  /** Forgets any incomplete message (decoding stopped). */
  reset(): void {
    this.#part = null;
    this.#have = 0;
    this.#need = 0;
  }

  /** Decodes what `data` completes; throws MongoDecodeError on a malformed message (state is then undefined). */
  onData(data: Uint8Array): void {
    let off = 0;
    const n = data.length;
    if (this.#part !== null) {
      off = this.#fill(data);
      if (this.#part !== null) return;
    }
    while (n - off >= 4) {
      const len = this.#checkLength(readInt32(data, off));
      if (n - off < len) break;
      this.#decode(data, off, off + len);
      off += len;
    }
    if (off < n) this.#keep(data, off);
  }

  #checkLength(len: number): number {
    if (len < 16 || len > this.#max) throw new MongoDecodeError(`invalid message length ${len}`);
    return len;
  }

  /** Starts an incomplete message with `data[off..]`. */
  #keep(data: Uint8Array, off: number): void {
    const rest = data.length - off;
    let cap = 16; // the shortest message, until its length is known
    if (rest >= 4) {
      this.#need = readInt32(data, off);
      cap = Math.min(this.#need, Math.max(64, rest * 2));
    }
    const part = new Uint8Array(Math.max(cap, rest));
    part.set(data.subarray(off));
    this.#part = part;
    this.#have = rest;
  }

  /** Adds `data` to the incomplete message, decoding it once whole; returns how much of `data` it took. */
  #fill(data: Uint8Array): number {
    let off = 0;
    let part = this.#part!;
    if (this.#have < 4) {
      const take = Math.min(4 - this.#have, data.length);
      part.set(data.subarray(0, take), this.#have);
      this.#have += take;
      off = take;
      if (this.#have < 4) return off;
      this.#need = this.#checkLength(readInt32(part, 0));
    }
    const need = this.#need;
    const take = Math.min(need - this.#have, data.length - off);
    if (this.#have + take > part.length) {
      const grown = new Uint8Array(Math.min(need, Math.max(part.length * 2, this.#have + take)));
      grown.set(part.subarray(0, this.#have));
      this.#part = part = grown;
    }
    part.set(data.subarray(off, off + take), this.#have);
    this.#have += take;
    off += take;
    if (this.#have < need) return off;
    this.reset();
    this.#decode(part, 0, need);
    return off;
  }

  /** Parses the message `b[start, end)` and hands it on. */
  #decode(b: Uint8Array, start: number, end: number): void {
    const m = this.#m;
    m.buf = b;
    m.start = start;
    m.end = end;
    m.requestId = readInt32(b, start + 4);
    m.responseTo = readInt32(b, start + 8);
    m.opCode = readInt32(b, start + 12);
    m.cursorIdAt = -1;
    m.doc = -1;
    m.doc2 = -1;
    m.docCount = 0;
    m.docBytes = 0;
    m.docs.length = 0;
    if (m.opCode === OpCode.Compressed) {
      if (end - start < 25) throw new MongoDecodeError("invalid OP_COMPRESSED");
      m.originalOpCode = readInt32(b, start + 16);
      m.uncompressedSize = readInt32(b, start + 20);
      m.compressorId = b[start + 24];
      if (m.uncompressedSize < 0 || m.originalOpCode === OpCode.Compressed) {
        throw new MongoDecodeError("invalid OP_COMPRESSED");
      }
      // noop compressor: the body is the original message's, as is
      if (m.compressorId === 0) {
        if (m.uncompressedSize !== end - start - 25) throw new MongoDecodeError("invalid OP_COMPRESSED size");
        m.opCode = m.originalOpCode;
        parseBody(m, b, start + 25, end);
        m.opCode = OpCode.Compressed;
      }
    } else parseBody(m, b, start + 16, end);
    this.#sink.onMessage(m);
  }
}
