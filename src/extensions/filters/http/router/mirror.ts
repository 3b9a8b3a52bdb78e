/**
 * request_mirror_policies: fire-and-forget shadow requests. A shadow goes to the mirror cluster with the
 * primary's upstream headers, `-shadow` appended to the host, and the whole (buffered) request body; its
 * response is read (the HTTP/1.1 client codec, or an HTTP/2 stream when the cluster speaks HTTP/2 as the
 * primary would) and dropped. Nothing about it reaches the primary request: errors end only the shadow.
 */
import { Logger } from "../../../../common/log.ts";
import { type TimeoutTarget, TimerEntry } from "../../../../common/timer_wheel.ts";
import type { HttpFilterCallbacks, HttpRequest } from "../../../../http/filter.ts";
import { BodyFraming } from "../../../../http/h1/client.ts";
import { encodeRequestHead } from "../../../../http/h1/encode.ts";
import type { H2ClientConnection } from "../../../../http/h2/client.ts";
import { ErrorCode } from "../../../../http/h2/constants.ts";
import type { H2Head } from "../../../../http/h2/head.ts";
import type { H2Stream, H2StreamHandler } from "../../../../http/h2/stream.ts";
import type { HeaderMap } from "../../../../http/headers.ts";
import type { RouteActionEntry } from "../../../../http/routing/types.ts";
import type { FactoryContext } from "../../../../network/filter.ts";
import type {
  AcquireOptions,
  Cluster,
  ConnectFailure,
  H2StreamRequester,
  Host,
  UpstreamConnection,
} from "../../../../upstream/types.ts";
import { useH2 } from "./request_head.ts";

const log = new Logger("router");
const EMPTY = new Uint8Array(0);

/** `host` with "-shadow" appended to the host name (before any port), as Envoy does. */
export function shadowHost(host: string): string {
  let colon = host.lastIndexOf(":");
  if (colon >= 0 && host.charCodeAt(0) === 91 /* [ */ && host.lastIndexOf("]") > colon) colon = -1;
  return colon > 0 ? `${host.slice(0, colon)}-shadow${host.slice(colon)}` : `${host}-shadow`;
}

/** One shadow request; `send` starts it and returns at once. */
export class ShadowRequest implements TimeoutTarget, AcquireOptions, H2StreamRequester, H2StreamHandler {
  #up: UpstreamConnection | null = null;
  #stream: H2Stream | null = null;
  #host: Host | null = null;
  #timer: TimerEntry | null = null;
  #acquiring = false;
  #inH2Pool = false;
  #done = false;
  #counted = false;
  #h2Head: H2Head | null = null;
  #body: readonly Uint8Array[] = [];
  #method = "";
  #path = "";

  constructor(
    readonly ctx: FactoryContext,
    readonly cluster: Cluster,
    readonly priority: number,
    readonly timeoutMs: number,
    /** The shadow goes over HTTP/2 (the cluster speaks it for this request, as the primary would). */
    readonly h2: boolean,
  ) {}

  /**
   * Sends `req`'s method to `path` with `headers` (the primary's upstream headers; Host is rewritten here) and
   * the complete `body`. Fire and forget: never throws, never rejects.
   */
  send(req: HttpRequest, path: string, headers: HeaderMap, body: readonly Uint8Array[]): void {
    const cluster = this.cluster;
    const host = cluster.chooseHost({});
    if (host === null) return;
    const breakers = cluster.circuitBreakers.forPriority(this.priority);
    if (!breakers.tryRequest()) {
      cluster.circuitBreakers.stats.upstream_rq_pending_overflow.inc();
      return;
    }
    this.#host = host;
    this.#counted = true;
    cluster.stats.upstream_rq_total.inc();
    cluster.stats.upstream_rq_active.inc();
    host.activeRequests++;
    host.stats.rq_total++;
    if (this.timeoutMs > 0) {
      this.#timer = new TimerEntry(this);
      this.ctx.timers.arm(this.#timer, this.timeoutMs, 0);
    }
    let total = 0;
    for (const b of body) total += b.length;
    headers.set("host", shadowHost(headers.get("host") ?? ""));
    headers.remove("transfer-encoding");
    if (total > 0 || headers.has("content-length")) headers.set("content-length", String(total));
    this.#body = body;
    this.#method = req.method;
    this.#path = path;
    if (this.h2) {
      this.#h2Head = {
        method: req.method,
        scheme: req.scheme || "http",
        authority: headers.get("host")!,
        path,
        protocol: "",
        status: 0,
        headers,
      };
      this.#inH2Pool = true;
      cluster.newH2Stream!(host, this);
      return;
    }
    this.#runH1(headers).catch(() => this.#end(false));
  }

  async #runH1(headers: HeaderMap): Promise<void> {
    const cluster = this.cluster;
    const host = this.#host!;
    const method = this.#method;
    const head = encodeRequestHead(method, this.#path, headers);
    this.#acquiring = true;
    const acq = await cluster.acquireHttp1(host, this);
    this.#acquiring = false;
    if (!acq.ok) {
      if (acq.reason !== "cancelled" && acq.reason !== "overflow") cluster.recordOutcome(host, 503);
      this.#end(false);
      return;
    }
    if (this.#done) {
      acq.connection.release(true);
      return;
    }
    const up = acq.connection;
    this.#up = up;
    await write(up, head);
    for (const b of this.#body) await write(up, b);
    // read the response and drop it; the connection stays when it ended cleanly
    const h1 = up.h1;
    const res = await h1.readResponseHead(method);
    if (this.#done) return;
    this.#responded(res.status);
    if (h1.framing === BodyFraming.Close) return this.#end(false); // not worth reading to the end
    const reusable = await h1.skipBody();
    this.#end(reusable);
  }

  #responded(status: number): void {
    this.cluster.recordOutcome(this.#host!, status);
    this.cluster.stats.recordResponseCode(status);
  }

  // ---- H2StreamRequester ----

  onPoolReady(h2: H2ClientConnection, _reused: boolean): void {
    this.#inH2Pool = false;
    if (this.#done) return;
    const head = this.#h2Head!;
    this.#h2Head = null;
    const body = this.#body;
    const st = h2.request(head, body.length === 0, this);
    if (st === null) return this.#end(false);
    this.#stream = st;
    if (body.length > 0) {
      for (let i = 0; i < body.length; i++) st.sendData(body[i], false);
      st.sendData(EMPTY, true);
    }
  }

  onPoolFailure(reason: ConnectFailure | "http1", _detail: string): void {
    this.#inH2Pool = false;
    if (this.#done) return;
    if (reason === "http1") {
      // ALPN chose HTTP/1.1 for this host
      const headers = this.#h2Head!.headers;
      this.#h2Head = null;
      this.#runH1(headers).catch(() => this.#end(false));
      return;
    }
    if (reason !== "cancelled" && reason !== "overflow") this.cluster.recordOutcome(this.#host!, 503);
    this.#end(false);
  }

  // ---- H2StreamHandler ----

  onHeaders(_st: H2Stream, head: H2Head, endStream: boolean): void {
    if (this.#done) return;
    this.#responded(head.status);
    if (endStream) this.#end(true);
  }

  onData(_st: H2Stream, _data: Uint8Array, endStream: boolean): void {
    if (endStream) this.#end(true);
  }

  onTrailers(): void {
    this.#end(true);
  }

  onReset(): void {
    this.#stream = null;
    this.#end(false);
  }

  onTimeout(): void {
    if (this.#done) return;
    this.cluster.stats.upstream_rq_timeout.inc();
    if (this.#host) this.cluster.recordOutcome(this.#host, 504);
    if (this.#acquiring) this.cluster.cancelAcquire(this);
    if (this.#inH2Pool) {
      this.#inH2Pool = false;
      this.cluster.cancelH2Stream?.(this);
    }
    this.#end(false);
  }

  #end(reusable: boolean): void {
    if (this.#done) return;
    this.#done = true;
    if (this.#timer) this.ctx.timers.disarm(this.#timer);
    const up = this.#up;
    if (up !== null) {
      this.#up = null;
      up.h1.endResponse();
      up.release(reusable);
    }
    const st = this.#stream;
    if (st !== null) {
      this.#stream = null;
      if (!st.isClosed) st.reset(ErrorCode.CANCEL);
    }
    if (!this.#counted) return;
    const cluster = this.cluster;
    cluster.circuitBreakers.forPriority(this.priority).releaseRequest();
    cluster.stats.upstream_rq_active.dec();
    cluster.stats.upstream_rq_completed.inc();
    this.#host!.activeRequests--;
    if (reusable) this.#host!.stats.rq_success++;
    else this.#host!.stats.rq_error++;
  }
}

async function write(up: UpstreamConnection, data: Uint8Array): Promise<void> {
  let off = 0;
  while (off < data.length) off += await up.conn.write(off === 0 ? data : data.subarray(off));
}

/** The shadows of one request: chosen when the request starts, sent when its body is complete. */
export class MirrorSet {
  private constructor(readonly shadows: ShadowRequest[], readonly headers: HeaderMap) {}

  /**
   * The shadows `route` asks for (each policy passing its runtime fraction), or null when none. A policy with
   * cluster_header takes the cluster from that request header; as in Envoy, a missing (or empty) header or a
   * cluster that does not exist means no shadow for that policy.
   */
  static create(
    ctx: FactoryContext,
    route: RouteActionEntry,
    headers: HeaderMap,
    timeoutMs: number,
    random: () => number,
    cb: HttpFilterCallbacks,
  ): MirrorSet | null {
    const info = cb.streamInfo;
    const shadows: ShadowRequest[] = [];
    for (const m of route.mirrorPolicies) {
      if (m.fraction < 1 && !(random() < m.fraction)) continue;
      const name = m.clusterHeader === "" ? m.cluster : headers.get(m.clusterHeader) ?? "";
      const cluster = name === "" ? undefined : ctx.clusterManager.get(name);
      if (cluster) {
        const proto = cluster.httpProtocol;
        const h2 = proto !== undefined && proto !== 0 && cluster.newH2Stream !== undefined &&
          useH2(proto, cb);
        shadows.push(new ShadowRequest(ctx, cluster, route.priority, timeoutMs, h2));
      } else if (log.enabled("debug")) {
        log.debug(
          name === ""
            ? `${info.logPrefix()}There is no cluster name in header: ${m.clusterHeader}`
            : `${info.logPrefix()}Shadow cluster '${name}' does not exist`,
        );
      }
    }
    return shadows.length > 0 ? new MirrorSet(shadows, headers.clone()) : null;
  }

  /** Sends every shadow of `req` to `path` with the complete request `body`. */
  send(req: HttpRequest, path: string, body: readonly Uint8Array[]): void {
    const s = this.shadows;
    for (let i = 0; i < s.length; i++) {
      s[i].send(req, path, i === s.length - 1 ? this.headers : this.headers.clone(), body);
    }
  }
}
