/**
 * The response side of an ActiveStream below its fast path: the common response header handling
 * (`sendHeaders`: hop-by-hop removal, server, x-request-id, via), and the encoder filter chain when some
 * filter has encode* methods, including responses a filter holds (`HeldResponse`: the head and a bounded copy
 * of the body until the holding filter lets go). A stream whose filters never encode gets only `sendHeaders`
 * and, for trailers, the (empty) chain walk from here.
 */
import { HttpFilterStatus, type HttpResponse } from "./filter.ts";
import type { HeaderMap } from "./headers.ts";
import type { ActiveStream } from "./active_stream.ts";
import { joinHeldBody } from "./stream_decode.ts";

const EMPTY = new Uint8Array(0);

/**
 * @internal The response an encoder filter holds. Created the first time a filter of the stream holds its
 * response and reused after (`index` -1 when nothing is held).
 */
export class HeldResponse {
  /** Index of the encoder filter holding the response (encodeHeaders stopped), -1 when none. */
  index = -1;
  /** The held response head. */
  head: HttpResponse | null = null;
  /** Copies of the body bytes seen while held. */
  parts: Uint8Array[] | null = null;
  /** Total length of `parts`. */
  bytes = 0;
}

/** True for the hop-by-hop response headers never forwarded downstream (lowercase names). */
function isHopByHop(n: string): boolean {
  switch (n.length) {
    case 7:
      return n === "upgrade";
    case 10:
      return n === "connection" || n === "keep-alive";
    case 16:
      return n === "proxy-connection";
    case 17:
      return n === "transfer-encoding";
    default:
      return false;
  }
}

/** Drops the hop-by-hop lines from `h` in one pass, in place. */
function stripHopByHop(h: HeaderMap): void {
  const names = h.names;
  const values = h.values;
  const n = names.length;
  let w = 0;
  for (let r = 0; r < n; r++) {
    const name = names[r];
    if (isHopByHop(name)) continue;
    if (w !== r) {
      names[w] = name;
      values[w] = values[r];
    }
    w++;
  }
  if (w !== n) names.length = values.length = w;
}

/** @internal The common response header handling, then the codec. */
export function sendHeaders(
  s: ActiveStream,
  res: HttpResponse,
  endStream: boolean,
  knownLength: number,
): Promise<void> {
  s.responseStarted = true;
  const info = s.streamInfo;
  info.responseCode = res.status;
  info.responseHeaders = res.headers;
  const h = res.headers;
  stripHopByHop(h);
  const o = s.cfg.opts;
  if (o.serverHeaderTransformation === "OVERWRITE") h.set("server", o.serverName);
  else if (o.serverHeaderTransformation === "APPEND_IF_ABSENT" && !h.has("server")) {
    h.addLower("server", o.serverName);
  }
  if (o.alwaysSetRequestIdInResponse) {
    const id = s.request.headers.get("x-request-id");
    if (id) h.set("x-request-id", id);
  }
  const tracing = s.cfg.tracing;
  if (tracing !== null) tracing.onResponseHeaders(s, h);
  if (o.via) h.addLower("via", o.via);
  s.headResolve?.();
  return s.encoder.encodeHeaders(s, res.status, h, endStream, knownLength);
}

/** @internal The trailers to the codec. */
export function sendTrailers(s: ActiveStream, trailers: HeaderMap): Promise<void> {
  s.streamInfo.responseTrailers = trailers;
  return s.encoder.encodeTrailers(s, trailers);
}

/** @internal encodeHeaders when some filter encodes: the chain, then the codec unless a filter holds it. */
export async function encodeHeadersChain(
  s: ActiveStream,
  res: HttpResponse,
  endStream: boolean,
  knownLength: number,
): Promise<void> {
  if (knownLength >= 0 && !endStream) {
    // filters see a local reply's length as Envoy's local replies carry it, in content-length: one that rewrites
    // the body (compression) drops it, and the codec goes by the headers
    res.headers.set("content-length", String(knownLength));
    knownLength = -1;
  }
  const held = await encodeHeadersFrom(s, s.filters.length - 1, res, endStream);
  if (held || s.responseStarted || s.reset) return;
  await sendHeaders(s, res, endStream, knownLength);
}

/** Runs encodeHeaders from filter `from` down to 0; true when a filter now holds the response. */
async function encodeHeadersFrom(
  s: ActiveStream,
  from: number,
  res: HttpResponse,
  endStream: boolean,
): Promise<boolean> {
  const fs = s.filters;
  for (let i = from; i >= 0; i--) {
    const f = fs[i];
    if (!f.encodeHeaders) continue;
    let st = f.encodeHeaders(res, endStream);
    if (st instanceof Promise) st = await st;
    if (st !== HttpFilterStatus.Continue) {
      if (endStream) break;
      const hold = s.encHold ??= new HeldResponse();
      hold.index = i;
      hold.head = res;
      return true;
    }
  }
  return false;
}

/**
 * @internal encodeData when some filter encodes: the chain from filter `from` down (buffering for a holding
 * filter), the codec.
 */
export async function encodeDataChain(
  s: ActiveStream,
  data: Uint8Array,
  endStream: boolean,
  from = s.filters.length - 1,
): Promise<void> {
  const hold = s.encHold;
  const held = hold === null ? -1 : hold.index;
  const fs = s.filters;
  for (let i = from; i >= 0 && i >= held; i--) {
    const f = fs[i];
    if (!f.encodeData) continue;
    let st = f.encodeData(data, endStream);
    if (st instanceof Promise) st = await st;
    if (st !== HttpFilterStatus.Continue) {
      if (typeof st !== "number") {
        // replaced bytes (HttpFilterDataResult); from the holding filter they are the whole body
        if (i === held) dropHeldBody(hold!);
        data = st;
        continue;
      }
      if (i === held) return bufferResponse(s, hold!, data);
      return;
    }
  }
  if (held >= 0) return await releaseResponse(s, hold!, data, endStream, null);
  s.streamInfo.bytesSent += data.length;
  await s.encoder.encodeData(s, data, endStream);
}

/** @internal encodeTrailers: the encoder filters, then the codec (or the holding filter lets go). */
export async function encodeTrailersChain(s: ActiveStream, trailers: HeaderMap): Promise<void> {
  if (s.responseDone) return;
  const fs = s.filters;
  const hold = s.encHold;
  const held = hold === null ? -1 : hold.index;
  for (let i = fs.length - 1; i >= 0 && i >= held; i--) {
    const f = fs[i];
    if (!f.encodeTrailers) continue;
    let st = f.encodeTrailers(trailers);
    if (st instanceof Promise) st = await st;
    if (st === HttpFilterStatus.Continue) continue;
    if (typeof st === "number") return;
    // body bytes before the trailers (HttpFilterDataResult); emptied trailers: the stream ends with them
    const last = trailers.size === 0;
    if (i === held) {
      dropHeldBody(hold!);
      return await releaseResponse(s, hold!, st, last, last ? null : trailers);
    }
    await encodeDataChain(s, st, last, i - 1);
    if (last || s.responseDone) return;
  }
  if (held >= 0) return await releaseResponse(s, hold!, EMPTY, false, trailers);
  await sendTrailers(s, trailers);
}

/** The holding filter replaced the body it held: the copies kept so far are dropped. */
function dropHeldBody(hold: HeldResponse): void {
  hold.parts = null;
  hold.bytes = 0;
}

/** Keeps a copy of response bytes for the holding encoder filter (bounded by the buffer limit). */
function bufferResponse(s: ActiveStream, hold: HeldResponse, data: Uint8Array): void {
  if (data.length === 0) return;
  const limit = s.bufferLimit > 0 ? s.bufferLimit : s.down.bufferLimitBytes;
  if (hold.bytes + data.length > limit) {
    // Envoy answers 500 when a buffered response outgrows the limit before its headers went out
    s.sendLocalReply(500, "Internal Server Error", { details: "response_payload_too_large" })
      .catch(() => s.resetStream());
    return;
  }
  (hold.parts ??= []).push(data.slice());
  hold.bytes += data.length;
}

/** The holding encoder filter let go: earlier filters and the codec get the head, the body and trailers. */
async function releaseResponse(
  s: ActiveStream,
  hold: HeldResponse,
  last: Uint8Array,
  endStream: boolean,
  trailers: HeaderMap | null,
): Promise<void> {
  const from = hold.index - 1;
  const res = hold.head!;
  hold.index = -1;
  hold.head = null;
  let body = joinHeldBody(hold.parts, hold.bytes, last);
  hold.parts = null;
  hold.bytes = 0;
  const onlyHead = body.length === 0 && !trailers;
  if (await encodeHeadersFrom(s, from, res, onlyHead && endStream)) {
    // a filter closer to the codec holds it in turn
    if (body.length > 0 || endStream) await s.encodeData(body, endStream);
    if (trailers) await s.encodeTrailers(trailers);
    return;
  }
  if (s.responseDone || s.reset) return;
  if (onlyHead && endStream) return await sendHeaders(s, res, true, 0);
  // the filters closer to the codec see the body and trailers before the head goes out: one that rewrites the
  // body (compression) changes the length the head announces
  const fs = s.filters;
  let tail = trailers;
  let ends = endStream && tail === null;
  if (body.length > 0 || tail === null) body = await encodeHeldData(s, from, body, ends);
  for (let i = from; tail !== null && i >= 0 && !s.responseDone; i--) {
    let st = fs[i].encodeTrailers?.(tail);
    if (st instanceof Promise) st = await st;
    if (!(st instanceof Uint8Array)) continue;
    // body bytes before the trailers (HttpFilterDataResult); emptied trailers: the stream ends with them
    if (tail.size === 0) tail = null;
    ends = tail === null;
    body = joinHeldBody([body], body.length, await encodeHeldData(s, i - 1, st, ends));
  }
  if (s.responseDone || s.reset) return;
  // the whole body is known once it ended: it goes out with content-length (HTTP/1.1 then drops trailers, as
  // Envoy does)
  await sendHeaders(s, res, false, ends || tail !== null ? body.length : -1);
  if (s.responseDone) return;
  if (body.length > 0 || tail === null) {
    s.streamInfo.bytesSent += body.length;
    await s.encoder.encodeData(s, body, ends);
  }
  if (tail !== null && !s.responseDone) await sendTrailers(s, tail);
}

/** Runs encodeData of filters `from` down to 0 over a released body; returns the bytes they leave. */
async function encodeHeldData(
  s: ActiveStream,
  from: number,
  data: Uint8Array,
  endStream: boolean,
): Promise<Uint8Array> {
  const fs = s.filters;
  for (let i = from; i >= 0; i--) {
    let st = fs[i].encodeData?.(data, endStream);
    if (st instanceof Promise) st = await st;
    if (st instanceof Uint8Array) data = st;
  }
  return data;
}
