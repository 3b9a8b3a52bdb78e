/**
 * request_mirror_policies: fire-and-forget shadow requests. A shadow goes to the mirror cluster with the
 * primary's upstream headers, `-shadow` appended to the host, and the whole (buffered) request body; its
 * response is read and dropped. Nothing about it reaches the primary request: errors end only the shadow.
 */
import { Logger } from "../../../../common/log.ts";
import type { StreamInfo } from "../../../../common/stream_info.ts";
import { type TimeoutTarget, TimerEntry } from "../../../../common/timer_wheel.ts";
import {
  ChunkedDecoder,
  encodeRequestHead,
  type HeadScanState,
  parseResponseHead,
  responseBodyKind,
} from "../../../../http/h1_glue.ts";
import type { HeaderMap } from "../../../../http/headers.ts";
import type { RouteActionEntry } from "../../../../http/routing/types.ts";
import type { FactoryContext } from "../../../../network/filter.ts";
import type { AcquireOptions, Cluster, Host, UpstreamConnection } from "../../../../upstream/types.ts";

const LIMITS = { maxHeadersBytes: 60 * 1024, maxHeadersCount: 100 };
const log = new Logger("router");

/** `host` with "-shadow" appended to the host name (before any port), as Envoy does. */
export function shadowHost(host: string): string {
  let colon = host.lastIndexOf(":");
  if (colon >= 0 && host.charCodeAt(0) === 91 /* [ */ && host.lastIndexOf("]") > colon) colon = -1;
  return colon > 0 ? `${host.slice(0, colon)}-shadow${host.slice(colon)}` : `${host}-shadow`;
}

/** One shadow request; `send` starts it and returns at once. */
export class ShadowRequest implements TimeoutTarget, AcquireOptions {
  #up: UpstreamConnection | null = null;
  #host: Host | null = null;
  #timer: TimerEntry | null = null;
  #acquiring = false;
  #done = false;
  #counted = false;

  constructor(
    readonly ctx: FactoryContext,
    readonly cluster: Cluster,
    readonly priority: number,
    readonly timeoutMs: number,
  ) {}

  /**
   * Sends `method path` with `headers` (the primary's upstream headers; Host is rewritten here) and the
   * complete `body`. Fire and forget: never throws, never rejects.
   */
  send(method: string, path: string, headers: HeaderMap, body: readonly Uint8Array[]): void {
    this.#run(method, path, headers, body).catch(() => this.#end(false));
  }

  async #run(method: string, path: string, headers: HeaderMap, body: readonly Uint8Array[]): Promise<void> {
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
    const head = encodeRequestHead(method, path, headers);
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
    for (const b of body) await write(up, b);
    await this.#drain(up, method);
  }

  /** Reads the response and drops it; keeps the connection when it ended cleanly. */
  async #drain(up: UpstreamConnection, method: string): Promise<void> {
    const buf = up.readBuf;
    let start = up.readStart;
    let end = up.readEnd;
    const scan: HeadScanState = { scanned: 0 };
    const read = async (): Promise<boolean> => {
      if (start === end) start = end = 0;
      else if (end === buf.length) {
        buf.copyWithin(0, start, end);
        end -= start;
        start = 0;
      }
      let n: number | null;
      if (up.pendingRead) {
        const p = up.pendingRead;
        up.pendingRead = null;
        n = await p;
        if (n !== null) {
          start = up.readStart;
          end = up.readEnd + n;
        }
      } else {
        if (end === buf.length) return false;
        n = await up.conn.read(buf.subarray(end));
        if (n !== null) end += n;
      }
      return n !== null && !this.#done;
    };
    let head = null;
    for (;;) {
      if (end > start) {
        head = parseResponseHead(buf, start, end, LIMITS, scan);
        if (head && head.status >= 100 && head.status < 200) {
          start = head.headEnd;
          head = null;
          continue;
        }
        if (head) break;
      }
      if (!(await read())) return this.#end(false);
    }
    start = head.headEnd;
    this.cluster.recordOutcome(this.#host!, head.status);
    this.cluster.stats.recordResponseCode(head.status);
    const kind = responseBodyKind(head, method);
    if (kind === "length") {
      let remaining = head.contentLength;
      for (;;) {
        const take = Math.min(remaining, end - start);
        remaining -= take;
        start += take;
        if (remaining === 0) break;
        if (!(await read())) return this.#end(false);
      }
    } else if (kind === "chunked") {
      const dec = new ChunkedDecoder(LIMITS, 502);
      for (;;) {
        const r = dec.next(buf, start, end);
        start = r.consumed;
        if (r.kind === "done") break;
        if (r.kind !== "data" && !(await read())) return this.#end(false);
      }
    } else if (kind !== "none") {
      return this.#end(false); // close-delimited: not worth reading to the end
    }
    this.#end(head.keepAlive && start === end);
  }

  onTimeout(): void {
    if (this.#done) return;
    this.cluster.stats.upstream_rq_timeout.inc();
    if (this.#host) this.cluster.recordOutcome(this.#host, 504);
    if (this.#acquiring) this.cluster.cancelAcquire(this);
    this.#end(false);
  }

  #end(reusable: boolean): void {
    if (this.#done) return;
    this.#done = true;
    if (this.#timer) this.ctx.timers.disarm(this.#timer);
    const up = this.#up;
    if (up !== null) {
      this.#up = null;
      up.readStart = up.readEnd = 0;
      up.release(reusable);
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
    info: StreamInfo,
  ): MirrorSet | null {
    const shadows: ShadowRequest[] = [];
    for (const m of route.mirrorPolicies) {
      if (m.fraction < 1 && !(random() < m.fraction)) continue;
      const name = m.clusterHeader === "" ? m.cluster : headers.get(m.clusterHeader) ?? "";
      const cluster = name === "" ? undefined : ctx.clusterManager.get(name);
      if (cluster) shadows.push(new ShadowRequest(ctx, cluster, route.priority, timeoutMs));
      else if (log.enabled("debug")) {
        log.debug(
          name === ""
            ? `${info.logPrefix()}There is no cluster name in header: ${m.clusterHeader}`
            : `${info.logPrefix()}Shadow cluster '${name}' does not exist`,
        );
      }
    }
    return shadows.length > 0 ? new MirrorSet(shadows, headers.clone()) : null;
  }

  /** Sends every shadow with the complete request `body`. */
  send(method: string, path: string, body: readonly Uint8Array[]): void {
    const s = this.shadows;
    for (let i = 0; i < s.length; i++) {
      s[i].send(method, path, i === s.length - 1 ? this.headers : this.headers.clone(), body);
    }
  }
}
