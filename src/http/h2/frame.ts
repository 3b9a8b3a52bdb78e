/**
 * Frame serialization into a growable output buffer. Frames are appended back to back; the session writes
 * the buffer to the socket as a whole and counts queued frames for the outbound flood limits.
 */
import { Flag, FRAME_HEADER, FrameType } from "./constants.ts";
import { grownTo } from "../../network/raw_io.ts";

/** A growable byte buffer that frames and HPACK blocks are written into. */
export class OutBuf {
  /** Backing storage; bytes [0, len) are queued. */
  buf: Uint8Array;
  /** Bytes queued. */
  len = 0;
  /** Frames queued. */
  frames = 0;
  /** Control frames queued (SETTINGS, PING, RST_STREAM, WINDOW_UPDATE, GOAWAY, PRIORITY). */
  controlFrames = 0;

  /** Makes a buffer with `size` bytes of initial capacity. */
  constructor(size = 16384) {
    this.buf = new Uint8Array(size);
  }

  /** Makes room for `n` more bytes. */
  ensure(n: number): void {
    const need = this.len + n;
    if (need > this.buf.length) this.buf = grownTo(this.buf, this.len, need);
  }

  /** Empties the buffer (after a write), shrinking it when a burst made it large. */
  clear(): void {
    this.len = 0;
    this.frames = 0;
    this.controlFrames = 0;
    if (this.buf.length > 1 << 20) this.buf = new Uint8Array(1 << 16);
  }

  /** Writes a frame header at `len` (space must be ensured). */
  header(length: number, type: number, flags: number, streamId: number): void {
    const b = this.buf;
    const p = this.len;
    b[p] = length >>> 16;
    b[p + 1] = (length >>> 8) & 0xff;
    b[p + 2] = length & 0xff;
    b[p + 3] = type;
    b[p + 4] = flags;
    writeU32(b, p + 5, streamId & 0x7fffffff);
    this.len = p + FRAME_HEADER;
    this.frames++;
  }

  /** Appends a big-endian 32-bit value (space must be ensured). */
  u32(v: number): void {
    writeU32(this.buf, this.len, v);
    this.len += 4;
  }
}

/** Writes a big-endian 32-bit unsigned value. */
export function writeU32(b: Uint8Array, p: number, v: number): void {
  b[p] = v >>> 24;
  b[p + 1] = (v >>> 16) & 0xff;
  b[p + 2] = (v >>> 8) & 0xff;
  b[p + 3] = v & 0xff;
}

/** Reads a big-endian 32-bit unsigned value. */
export function readU32(b: Uint8Array, p: number): number {
  return ((b[p] << 24) | (b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3]) >>> 0;
}

/** Queues a SETTINGS frame from parallel id/value lists. */
export function writeSettings(out: OutBuf, ids: readonly number[], values: readonly number[]): void {
  out.ensure(FRAME_HEADER + ids.length * 6);
  out.header(ids.length * 6, FrameType.SETTINGS, 0, 0);
  const b = out.buf;
  for (let i = 0; i < ids.length; i++) {
    b[out.len] = ids[i] >> 8;
    b[out.len + 1] = ids[i] & 0xff;
    writeU32(b, out.len + 2, values[i]);
    out.len += 6;
  }
  out.controlFrames++;
}

/** Queues a SETTINGS ACK. */
export function writeSettingsAck(out: OutBuf): void {
  out.ensure(FRAME_HEADER);
  out.header(0, FrameType.SETTINGS, Flag.ACK, 0);
  out.controlFrames++;
}

/** Queues a PING (or PING ACK) carrying the 8 bytes of `data` at `off`. */
export function writePing(out: OutBuf, ack: boolean, data: Uint8Array, off: number): void {
  out.ensure(FRAME_HEADER + 8);
  out.header(8, FrameType.PING, ack ? Flag.ACK : 0, 0);
  out.buf.set(data.subarray(off, off + 8), out.len);
  out.len += 8;
  out.controlFrames++;
}

/** Queues a GOAWAY. */
export function writeGoaway(out: OutBuf, lastStreamId: number, code: number, debug?: Uint8Array): void {
  const n = debug ? debug.length : 0;
  out.ensure(FRAME_HEADER + 8 + n);
  out.header(8 + n, FrameType.GOAWAY, 0, 0);
  out.u32(lastStreamId & 0x7fffffff);
  out.u32(code);
  if (debug) {
    out.buf.set(debug, out.len);
    out.len += n;
  }
  out.controlFrames++;
}

/** Queues a RST_STREAM. */
export function writeRst(out: OutBuf, streamId: number, code: number): void {
  out.ensure(FRAME_HEADER + 4);
  out.header(4, FrameType.RST_STREAM, 0, streamId);
  out.u32(code);
  out.controlFrames++;
}

/** Queues a WINDOW_UPDATE. */
export function writeWindowUpdate(out: OutBuf, streamId: number, increment: number): void {
  out.ensure(FRAME_HEADER + 4);
  out.header(4, FrameType.WINDOW_UPDATE, 0, streamId);
  out.u32(increment & 0x7fffffff);
  out.controlFrames++;
}

/** Queues a PRIORITY frame (used by tests to craft input). */
export function writePriority(out: OutBuf, streamId: number, dependsOn: number, weight: number): void {
  out.ensure(FRAME_HEADER + 5);
  out.header(5, FrameType.PRIORITY, 0, streamId);
  out.u32(dependsOn);
  out.buf[out.len++] = weight;
  out.controlFrames++;
}

/** Queues a DATA frame carrying `data[start, end)`. */
export function writeData(
  out: OutBuf,
  streamId: number,
  data: Uint8Array,
  start: number,
  end: number,
  endStream: boolean,
): void {
  const n = end - start;
  out.ensure(FRAME_HEADER + n);
  out.header(n, FrameType.DATA, endStream ? Flag.END_STREAM : 0, streamId);
  if (n > 0) {
    out.buf.set(n === data.length ? data : data.subarray(start, end), out.len);
    out.len += n;
  }
}

/** Reserves a HEADERS frame header; the HPACK block is then appended and `endHeaders` patches it. */
export function beginHeaders(out: OutBuf): number {
  out.ensure(FRAME_HEADER);
  const at = out.len;
  out.len += FRAME_HEADER;
  return at;
}

/**
 * Completes a HEADERS frame begun at `at`: writes its header and, when the block is larger than
 * `maxFrameSize`, splits it into HEADERS + CONTINUATION frames.
 */
export function endHeaders(
  out: OutBuf,
  at: number,
  streamId: number,
  endStream: boolean,
  maxFrameSize: number,
): void {
  const blockStart = at + FRAME_HEADER;
  const blockLen = out.len - blockStart;
  const es = endStream ? Flag.END_STREAM : 0;
  if (blockLen <= maxFrameSize) {
    out.len = at;
    out.header(blockLen, FrameType.HEADERS, es | Flag.END_HEADERS, streamId);
    out.len = blockStart + blockLen;
    return;
  }
  const block = out.buf.slice(blockStart, out.len);
  out.len = at;
  let off = 0;
  let first = true;
  while (off < block.length) {
    const n = Math.min(maxFrameSize, block.length - off);
    const last = off + n === block.length;
    out.ensure(FRAME_HEADER + n);
    const type = first ? FrameType.HEADERS : FrameType.CONTINUATION;
    out.header(n, type, (first ? es : 0) | (last ? Flag.END_HEADERS : 0), streamId);
    out.buf.set(block.subarray(off, off + n), out.len);
    out.len += n;
    off += n;
    first = false;
  }
}
