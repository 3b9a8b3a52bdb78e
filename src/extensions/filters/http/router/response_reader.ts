/**
 * Reads an attempt's response through the connection's HTTP/1.1 client codec (http/h1/client.ts): the head
 * (handed to the router), then the body forwarded downstream. One async function per response, no closures:
 * the codec's `read()` is the runtime's read promise itself and its parsing is synchronous.
 */
import { BodyEvent, BodyFraming } from "../../../../http/h1/client.ts";
import { H1ParseError } from "../../../../http/h1/types.ts";
import type { UpstreamRequest } from "./upstream_request.ts";

const EMPTY = new Uint8Array(0);

/** Reads the response of `a`; forwards it downstream once the router accepts the head. */
export async function readResponse(a: UpstreamRequest): Promise<void> {
  const h1 = a.up!.h1;
  const cb = a.owner.cb;
  const method = cb.request.method;
  let reusable = false;
  try {
    // ---- head ----
    let head = h1.readHead(method);
    while (head === null) {
      const n = await h1.read();
      if (a.finished) return;
      if (!h1.received(n)) {
        a.upstreamReset();
        return;
      }
      received(a, n!);
      head = h1.readHead(method);
    }
    const status = head.status;
    const framing = h1.framing;
    const none = framing === BodyFraming.None || (framing === BodyFraming.Length && h1.remaining === 0);
    if (!a.headArrived(status, head.headers)) return; // the router retries: dropped with its connection
    if (none) {
      h1.nextBody();
      reusable = h1.reusable;
      a.upstreamComplete = true;
    }
    await cb.encodeHeaders({ status, headers: head.headers }, none);
    if (a.finished || none) return;
    // ---- body ----
    for (;;) {
      const ev = h1.nextBody();
      if (ev === BodyEvent.Data) {
        const chunk = h1.buf.subarray(h1.dataStart, h1.dataEnd);
        if (framing === BodyFraming.Length && h1.remaining === 0) {
          h1.nextBody(); // Done: decides reuse
          reusable = h1.reusable;
          a.upstreamComplete = true;
          await cb.encodeData(chunk, true);
          return;
        }
        await cb.encodeData(chunk, false);
        if (a.finished) return;
      } else if (ev === BodyEvent.Done) {
        reusable = h1.reusable;
        a.upstreamComplete = true;
        const t = h1.trailers;
        if (t !== null && t.size > 0) await cb.encodeTrailers(t);
        else await cb.encodeData(EMPTY, true);
        return;
      } else {
        await cb.encodeData(EMPTY, false); // flush the head before waiting
        if (a.finished) return;
        const n = await h1.read();
        if (a.finished) return;
        if (!h1.received(n)) {
          a.upstreamReset();
          return;
        }
        if (n) received(a, n);
      }
    }
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

/** `n` upstream bytes arrived for `a`: rx stats, the attempt's and the stream's receive times, idle timeout. */
function received(a: UpstreamRequest, n: number): void {
  a.cluster.stats.upstream_cx_rx_bytes_total.inc(n);
  a.noteReceived();
}
