/**
 * One HTTP/1.1 POST to a collector cluster (Envoy's async client as the tracers use it): a pooled keep-alive
 * connection from the cluster (its stats and breakers count the call), the body, the response status read
 * and its body skipped. Runs off the request path, from a tracer's flush; never rejects.
 */
import { encodeRequestHead } from "../http/h1_glue.ts";
import type { ResponseHead } from "../http/h1_glue.ts";
import { BodyFraming, H1ClosedError } from "../http/h1/client.ts";
import { HeaderMap } from "../http/headers.ts";
import { connWriteAll } from "../network/raw_io.ts";
import type { AcquireOptions, ClusterManager, UpstreamConnection } from "../upstream/types.ts";

/** Bytes a caller may leave free in front of `body` (see `CollectorPost.headRoom`): room for a request head. */
export const COLLECTOR_HEAD_ROOM = 512;

const ACQUIRE: AcquireOptions = { priority: 0 };

/** What to send. */
export interface CollectorPost {
  readonly cluster: string;
  readonly path: string;
  readonly authority: string;
  readonly contentType: string;
  readonly body: Uint8Array;
  /**
   * Bytes of `body.buffer` right before `body` that the call may overwrite with the request head, so that head
   * and body go out in one write without copying the body (0 or absent: the body is copied behind the head).
   */
  readonly headRoom?: number;
  /** Extra request headers (lowercase names). */
  readonly headers?: readonly [string, string][];
  /** Bound on the whole exchange, ms (0: none). */
  readonly timeoutMs: number;
}

/**
 * Posts `p` to a host of its cluster. Resolves with the response status, 0 when the call failed (unknown
 * cluster, no host, connect failure, reset, timeout); -1 when the cluster does not exist.
 */
export async function postToCollector(cm: ClusterManager, p: CollectorPost): Promise<number> {
  const cluster = cm.get(p.cluster);
  if (cluster === undefined) return -1;
  const host = cluster.chooseHost({});
  if (host === null) return 0;
  const breakers = cluster.circuitBreakers.forPriority(0);
  if (!breakers.tryRequest()) {
    cluster.circuitBreakers.stats.upstream_rq_pending_overflow.inc();
    return 0;
  }
  const headers = new HeaderMap();
  headers.addLower("content-type", p.contentType);
  headers.addLower("content-length", String(p.body.length));
  for (const [k, v] of p.headers ?? []) headers.addLower(k, v);
  let up: UpstreamConnection | null = null;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let timedOut = false;
  try {
    // head and body in one write: a report is one syscall to the collector
    const head = encodeRequestHead("POST", p.path, headers, { authority: p.authority });
    const body = p.body;
    let message: Uint8Array;
    if (head.length <= (p.headRoom ?? 0) && body.byteOffset >= head.length) {
      message = new Uint8Array(body.buffer, body.byteOffset - head.length, head.length + body.length);
    } else {
      message = new Uint8Array(head.length + body.length);
      message.set(body, head.length);
    }
    message.set(head);
    const acq = cluster.takeIdleHttp1(host) ?? await cluster.acquireHttp1(host, ACQUIRE);
    if (!acq.ok) return 0;
    const conn = up = acq.connection;
    cluster.stats.upstream_rq_total.inc();
    if (p.timeoutMs > 0) {
      timer = setTimeout(() => {
        timedOut = true;
        cluster.stats.upstream_rq_timeout.inc();
        try {
          conn.conn.close();
        } catch {
          // already closed
        }
      }, p.timeoutMs);
    }
    await connWriteAll(conn.conn, message);
    const res = await readResponse(conn);
    if (res === null || timedOut) {
      conn.release(false);
      up = null;
      return 0;
    }
    cluster.stats.recordResponseCode(res.head.status);
    conn.release(res.reusable);
    up = null;
    return res.head.status;
  } catch {
    if (up !== null) up.release(false);
    return 0;
  } finally {
    if (timer !== undefined) clearTimeout(timer);
    breakers.releaseRequest();
  }
}

/**
 * Reads the response head and skips a Content-Length body with the connection's HTTP/1.1 codec; null when the
 * connection ended first. A chunked or close-delimited body is not read: the status is all a tracer needs,
 * and the connection is not reused.
 */
async function readResponse(
  up: UpstreamConnection,
): Promise<{ head: ResponseHead; reusable: boolean } | null> {
  const h1 = up.h1;
  try {
    const head = await h1.readResponseHead("POST");
    const f = h1.framing;
    const reusable = f === BodyFraming.Length || f === BodyFraming.None ? await h1.skipBody() : false;
    return { head, reusable };
  } catch (e) {
    if (e instanceof H1ClosedError) return null;
    throw e;
  } finally {
    h1.endResponse();
  }
}
