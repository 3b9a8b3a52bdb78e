/** Reads an attempt's response: the head (handed to the router), then the body forwarded downstream. */
import { connRead } from "../../../../network/raw_io.ts";
import {
  ChunkedDecoder,
  H1ParseError,
  type HeadScanState,
  parseResponseHead,
  responseBodyKind,
} from "../../../../http/h1_glue.ts";
import type { UpstreamConnection } from "../../../../upstream/types.ts";
import type { UpstreamRequest } from "./upstream_request.ts";

const EMPTY = new Uint8Array(0);
const RESPONSE_LIMITS = { maxHeadersBytes: 60 * 1024, maxHeadersCount: 100 };

/** Reads the response of `a`; forwards it downstream once the router accepts the head. */
export async function readResponse(a: UpstreamRequest): Promise<void> {
  const up = a.up!;
  const cb = a.owner.cb;
  const buf = up.readBuf;
  const scan: HeadScanState = { scanned: 0 };
  let start = up.readStart;
  let end = up.readEnd;
  let reusable = false;
  try {
    // ---- head ----
    let head = null;
    for (;;) {
      if (end > start) {
        head = parseResponseHead(buf, start, end, RESPONSE_LIMITS, scan);
        if (head) {
          start = head.headEnd;
          if (head.status >= 100 && head.status < 200 && head.status !== 101) {
            head = null; // 1xx interim responses are absorbed (Envoy answers 100-continue itself)
            continue;
          }
          break;
        }
      }
      const n = await readMore(a, up, buf, start, end);
      if (a.finished) return;
      if (n === null) {
        a.upstreamReset();
        return;
      }
      start = a.lastStart;
      end = a.lastEnd;
    }
    const status = head.status;
    const kind = status === 101 ? "close" : responseBodyKind(head, cb.request.method);
    if (!a.headArrived(status, head.headers)) return; // the router retries: dropped with its connection
    if (kind === "none") {
      reusable = head.keepAlive && end === start;
      a.upstreamComplete = true;
    }
    await cb.encodeHeaders({ status, headers: head.headers }, kind === "none");
    if (a.finished || kind === "none") return;
    if (kind === "length") {
      let remaining = head.contentLength;
      while (remaining > 0) {
        if (end === start) {
          await cb.encodeData(EMPTY, false); // flush the head before waiting
          start = end = 0;
          const n = await readMore(a, up, buf, 0, 0);
          if (a.finished) return;
          if (n === null) {
            a.upstreamReset();
            return;
          }
          end = n;
        }
        const take = Math.min(remaining, end - start);
        remaining -= take;
        const chunk = buf.subarray(start, start + take);
        start += take;
        if (remaining === 0) {
          reusable = head.keepAlive && end === start;
          a.upstreamComplete = true;
        }
        await cb.encodeData(chunk, remaining === 0);
        if (a.finished) return;
      }
      return;
    }
    if (kind === "chunked") {
      const dec = new ChunkedDecoder(RESPONSE_LIMITS, 502);
      for (;;) {
        const r = dec.next(buf, start, end);
        start = r.consumed;
        if (r.kind === "data") {
          await cb.encodeData(buf.subarray(r.start, r.end), false);
        } else if (r.kind === "done") {
          reusable = head.keepAlive && end === start;
          a.upstreamComplete = true;
          if (r.trailers && r.trailers.size > 0) await cb.encodeTrailers(r.trailers);
          else await cb.encodeData(EMPTY, true);
          return;
        } else {
          await cb.encodeData(EMPTY, false);
          if (start === end) start = end = 0;
          else if (end === buf.length) {
            buf.copyWithin(0, start, end);
            end -= start;
            start = 0;
          }
          const n = await readMore(a, up, buf, start, end);
          if (a.finished) return;
          if (n === null) {
            a.upstreamReset();
            return;
          }
          start = a.lastStart;
          end = a.lastEnd;
        }
        if (a.finished) return;
      }
    }
    // close-delimited (HTTP/1.0 style) or an upgraded tunnel: forward until EOF
    if (end > start) await cb.encodeData(buf.subarray(start, end), false);
    else await cb.encodeData(EMPTY, false);
    for (;;) {
      const n = await readMore(a, up, buf, 0, 0);
      if (a.finished) return;
      if (n === null) break;
      await cb.encodeData(buf.subarray(0, n), false);
    }
    a.upstreamComplete = true;
    await cb.encodeData(EMPTY, true);
  } catch (err) {
    if (a.finished || a.upstreamComplete) return;
    if (err instanceof H1ParseError && !a.headersForwarded) {
      a.protocolError();
      return;
    }
    a.upstreamReset();
  } finally {
    if (a.upstreamComplete) a.complete(reusable);
  }
}

/** Reads into buf after `end` (compacting when full); sets a.lastStart/a.lastEnd; null on EOF/error. */
async function readMore(
  a: UpstreamRequest,
  up: UpstreamConnection,
  buf: Uint8Array,
  start: number,
  end: number,
): Promise<number | null> {
  let n: number | null;
  if (end === buf.length && start > 0) {
    buf.copyWithin(0, start, end);
    end -= start;
    start = 0;
  }
  try {
    if (up.pendingRead) {
      // the pool's idle read landed at readEnd of the connection's buffer
      const p = up.pendingRead;
      up.pendingRead = null;
      n = (await p) || null;
      if (n !== null) {
        start = up.readStart;
        end = up.readEnd + n;
        up.readEnd = end;
      }
    } else {
      if (end === buf.length) throw new H1ParseError(502, "upstream_headers_too_large");
      n = (await connRead(up.conn, buf.subarray(end))) || null;
      if (n !== null) end += n;
    }
  } catch (err) {
    if (err instanceof H1ParseError) throw err;
    n = null;
  }
  if (n !== null) {
    a.cluster.stats.upstream_cx_rx_bytes_total.inc(n);
    const info = a.owner.cb.streamInfo;
    const now = a.owner.ctx.clock.monotonic();
    a.rxMono = now;
    if (info.firstUpstreamRxMono === 0) info.firstUpstreamRxMono = now;
    a.owner.onUpstreamActivity(now);
  }
  a.lastStart = start;
  a.lastEnd = end;
  return n;
}
