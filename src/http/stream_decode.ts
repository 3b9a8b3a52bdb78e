/**
 * The request side of an ActiveStream: runs decodeHeaders/decodeData/decodeTrailers through the filter chain
 * in configuration order, and buffers the request body for a filter that holds it with StopIterationAndBuffer
 * (`HeldRequest`, bounded by the decoder buffer limit: 413 past it) until that filter lets go.
 */
import { HttpFilterStatus } from "./filter.ts";
import type { HeaderMap } from "./headers.ts";
import type { ActiveStream } from "./active_stream.ts";

const EMPTY = new Uint8Array(0);

/**
 * @internal The request a decoder filter holds. Created the first time a filter of the stream holds its
 * request and reused after (`index` -1 when nothing is held).
 */
export class HeldRequest {
  /** Index of the filter holding the request with StopIterationAndBuffer, -1 when none. */
  index = -1;
  /** Copies of the body bytes seen while held. */
  parts: Uint8Array[] | null = null;
  /** Total length of `parts`. */
  bytes = 0;
}

/**
 * @internal Runs decodeHeaders from filter `start` on. Returns undefined when the chain finished without
 * waiting (every filter answered synchronously: the common case, no promise or suspended frame per request),
 * else a promise of the rest.
 */
export function decodeHeadersFrom(
  s: ActiveStream,
  start: number,
  endStream: boolean,
): Promise<void> | undefined {
  const fs = s.filters;
  for (let i = start; i < fs.length && !s.responseDone; i++) {
    const f = fs[i];
    if (!f.decodeHeaders) continue;
    const st = f.decodeHeaders(endStream);
    if (st instanceof Promise) return st.then((r) => headersAfter(s, i, endStream, r));
    if (st !== HttpFilterStatus.Continue) return void stopHeaders(s, i, endStream, st);
  }
}

/** Filter `i` answered `st` after waiting: the chain goes on from `i + 1` unless it stopped. */
function headersAfter(
  s: ActiveStream,
  i: number,
  endStream: boolean,
  st: HttpFilterStatus,
): Promise<void> | undefined {
  if (st !== HttpFilterStatus.Continue) return void stopHeaders(s, i, endStream, st);
  return decodeHeadersFrom(s, i + 1, endStream);
}

/** Filter `i` stopped the headers: with StopIterationAndBuffer it holds the request (unless it is complete). */
function stopHeaders(s: ActiveStream, i: number, endStream: boolean, st: HttpFilterStatus): void {
  if (st === HttpFilterStatus.StopIterationAndBuffer && !endStream) {
    (s.decHold ??= new HeldRequest()).index = i;
  }
}

/** @internal The held copies (`bytes` in all) followed by `last`, as one buffer (`last` itself when none). */
export function joinHeldBody(parts: Uint8Array[] | null, bytes: number, last: Uint8Array): Uint8Array {
  if (parts === null) return last;
  const body = new Uint8Array(bytes + last.length);
  let off = 0;
  for (const p of parts) {
    body.set(p, off);
    off += p.length;
  }
  body.set(last, off);
  return body;
}

/**
 * @internal Runs decodeData from filter `start` on, up to the holding filter if any (`held`: its index, -1 for
 * none, fixed when the chunk entered the chain). Returns undefined when nothing had to wait, else a promise of
 * the rest (as decodeHeadersFrom).
 */
export function decodeDataFrom(
  s: ActiveStream,
  start: number,
  data: Uint8Array,
  endStream: boolean,
  held = s.decHold === null ? -1 : s.decHold.index,
): Promise<void> | undefined {
  const fs = s.filters;
  const end = held >= 0 ? held + 1 : fs.length;
  for (let i = start; i < end && !s.responseDone; i++) {
    const f = fs[i];
    if (!f.decodeData) continue;
    const st = f.decodeData(data, endStream);
    if (st instanceof Promise) return st.then((r) => dataAfter(s, i, held, data, endStream, r));
    if (st === HttpFilterStatus.Continue) continue;
    if (typeof st === "number") return stopData(s, i, held, data, st);
    data = st; // the filter replaced the chunk (HttpFilterDataResult)
  }
  if (held >= 0 && !s.responseDone) return releaseRequest(s, s.decHold!, data, endStream, null);
}

/** Filter `i` answered `st` after waiting: as the loop of decodeDataFrom would, then on from `i + 1`. */
function dataAfter(
  s: ActiveStream,
  i: number,
  held: number,
  data: Uint8Array,
  endStream: boolean,
  st: HttpFilterStatus | Uint8Array,
): Promise<void> | undefined {
  if (typeof st === "number") {
    if (st !== HttpFilterStatus.Continue) return stopData(s, i, held, data, st);
  } else data = st;
  return decodeDataFrom(s, i + 1, data, endStream, held);
}

/** Filter `i` stopped the data: the holding filter buffers a copy. */
function stopData(
  s: ActiveStream,
  i: number,
  held: number,
  data: Uint8Array,
  st: HttpFilterStatus,
): Promise<void> | undefined {
  if (st === HttpFilterStatus.StopIterationAndBuffer && i === held) return bufferRequest(s, s.decHold!, data);
}

/** @internal Runs decodeTrailers from filter `start` on, up to the holding filter if any. */
export async function decodeTrailersFrom(s: ActiveStream, start: number, trailers: HeaderMap): Promise<void> {
  const fs = s.filters;
  const hold = s.decHold;
  const held = hold === null ? -1 : hold.index;
  const end = held >= 0 ? held + 1 : fs.length;
  for (let i = start; i < end && !s.responseDone; i++) {
    const f = fs[i];
    if (!f.decodeTrailers) continue;
    let st = f.decodeTrailers(trailers);
    if (st instanceof Promise) st = await st;
    if (st === HttpFilterStatus.StopIteration) return;
    if (typeof st !== "number") {
      // body bytes before the trailers (HttpFilterDataResult, Envoy's addDecodedData)
      if (i === held) return await releaseRequest(s, hold!, st, false, trailers);
      await decodeDataFrom(s, i + 1, st, false);
    }
  }
  if (held >= 0 && !s.responseDone) await releaseRequest(s, hold!, EMPTY, false, trailers);
}

/** Keeps a copy of body bytes for the holding filter; over the limit the request gets 413. */
async function bufferRequest(s: ActiveStream, hold: HeldRequest, data: Uint8Array): Promise<void> {
  if (data.length === 0) return;
  if (overLimit(s, hold, data.length)) return await tooLarge(s, hold);
  (hold.parts ??= []).push(data.slice());
  hold.bytes += data.length;
}

function overLimit(s: ActiveStream, hold: HeldRequest, more: number): boolean {
  const limit = s.bufferLimit > 0 ? s.bufferLimit : s.down.bufferLimitBytes;
  return hold.bytes + more > limit;
}

/** The held body outgrew the buffer limit: 413, as Envoy's connection manager answers. */
async function tooLarge(s: ActiveStream, hold: HeldRequest): Promise<void> {
  hold.index = -1;
  hold.parts = null;
  hold.bytes = 0;
  s.cfg.stats.downstream_rq_too_large.inc();
  s.closeConnection = true;
  await s.sendLocalReply(413, "Payload Too Large", { details: "request_payload_too_large" });
}

/** The holding filter let go: later filters get the headers, the buffered body (plus `last`), then trailers. */
async function releaseRequest(
  s: ActiveStream,
  hold: HeldRequest,
  last: Uint8Array,
  endStream: boolean,
  trailers: HeaderMap | null,
): Promise<void> {
  if (overLimit(s, hold, last.length)) return await tooLarge(s, hold);
  const from = hold.index + 1;
  hold.index = -1;
  const body = joinHeldBody(hold.parts, hold.bytes, last);
  hold.parts = null;
  hold.bytes = 0;
  await decodeHeadersFrom(s, from, false);
  if (s.responseDone) return;
  if (hold.index >= 0) {
    // a later filter holds the request in turn: it sees the body from the start
    if (body.length > 0 || endStream) await decodeDataFrom(s, from, body, endStream);
  } else if (body.length > 0 || (endStream && !trailers)) {
    await decodeDataFrom(s, from, body, endStream && !trailers);
  }
  if (trailers && !s.responseDone) await decodeTrailersFrom(s, from, trailers);
}
