/**
 * The AuthzClient of `http_service` (Envoy's RawHttpClientImpl): one HTTP/1.1 request per check on a pooled
 * keep-alive connection to `server_uri.cluster` (messages in http_mapping.ts), bounded by server_uri.timeout;
 * transport failures and timeouts are errors. The call counts in the cluster's stats and circuit breakers like
 * a routed request; a kept-alive connection the service closed while idle is retried once on another.
 */
import { Logger } from "../../../../common/log.ts";
import { type TimeoutTarget, TimerEntry } from "../../../../common/timer_wheel.ts";
import { encodeRequestHead, type ResponseHead } from "../../../../http/h1_glue.ts";
import { BodyEvent, H1ClosedError } from "../../../../http/h1/client.ts";
import type { RouteContext } from "../../../../http/routing/types.ts";
import { connWriteAll } from "../../../../network/raw_io.ts";
import type { FactoryContext } from "../../../../network/filter.ts";
import type {
  AcquireOptions,
  AcquireResult,
  Cluster,
  Host,
  UpstreamConnection,
} from "../../../../upstream/types.ts";
import {
  type AuthzCall,
  type AuthzClient,
  type AuthzResponse,
  type CheckInput,
  CheckStatus,
  emptyResponse,
} from "./check.ts";
import { authzRequest, type HttpClientConfig, toAuthzResponse } from "./http_mapping.ts";
import type { Span } from "../../../../tracing/types.ts";

const log = new Logger("ext_authz");
/** The largest authorization response body read (Envoy's async client buffers it whole). */
const MAX_BODY = 1 << 20;
const decoder = new TextDecoder();

/** Check calls over HTTP/1.1 to the service's cluster. */
export class HttpAuthzClient implements AuthzClient {
  /** Wall-clock time for the header formatters (%START_TIME%). */
  readonly now: () => number;

  constructor(readonly config: HttpClientConfig, readonly ctx: FactoryContext) {
    this.now = () => ctx.clock.now();
  }

  /** Starts a check; `routeCtx` feeds the header formatters of headers_to_add. */
  checkWith(input: CheckInput, routeCtx: RouteContext, span: Span | null = null): AuthzCall {
    const call = new HttpCheckCall(this, input, routeCtx, span);
    call.start();
    return call;
  }

  check(input: CheckInput): AuthzCall {
    return this.checkWith(input, {
      remoteIp: input.source.address,
      remoteAddress: `${input.source.address}:${input.source.port}`,
      localAddress: `${input.destination.address}:${input.destination.port}`,
      upstreamHost: "",
      protocol: input.protocol,
      requestId: "",
    });
  }

  close(): void {}
}

/** One authorization request; resolves `result` exactly once. */
class HttpCheckCall implements AuthzCall, TimeoutTarget, AcquireOptions {
  readonly priority = 0;
  readonly result: Promise<AuthzResponse>;
  #resolve!: (r: AuthzResponse) => void;
  #timer: TimerEntry | null = null;
  #cluster: Cluster | null = null;
  #host: Host | null = null;
  #up: UpstreamConnection | null = null;
  #acquiring = false;
  #done = false;
  #parts: Uint8Array[] | null = null;
  #total = 0;

  constructor(
    readonly client: HttpAuthzClient,
    readonly input: CheckInput,
    readonly routeCtx: RouteContext,
    /** The check's child span (tracing): its context goes to the authorization service. */
    readonly span: Span | null = null,
  ) {
    this.result = new Promise((r) => this.#resolve = r);
  }

  start(): void {
    this.#run().catch((err) => {
      if (log.enabled("debug")) log.debug(`ext_authz HTTP call failed: ${(err as Error).message}`);
      this.#finish(emptyResponse(CheckStatus.Error), false, 503);
    });
  }

  cancel(): void {
    this.#finish(emptyResponse(CheckStatus.Error), false, 0);
  }

  onTimeout(): void {
    if (this.#done) return;
    if (log.enabled("debug")) {
      log.debug(`ext_authz HTTP call timed out after ${this.client.config.timeoutMs}ms`);
    }
    this.#cluster?.stats.upstream_rq_timeout.inc();
    this.#finish(emptyResponse(CheckStatus.Error), false, 504);
  }

  async #run(): Promise<void> {
    const { config, ctx } = this.client;
    const cluster = ctx.clusterManager.get(config.cluster);
    if (!cluster) {
      if (log.enabled("debug")) log.debug(`ext_authz cluster '${config.cluster}' does not exist`);
      return this.#finish(emptyResponse(CheckStatus.Error), false, 0);
    }
    const host = cluster.chooseHost({});
    if (host === null) return this.#finish(emptyResponse(CheckStatus.Error), false, 0);
    if (!cluster.circuitBreakers.forPriority(0).tryRequest()) {
      cluster.circuitBreakers.stats.upstream_rq_pending_overflow.inc();
      return this.#finish(emptyResponse(CheckStatus.Error), false, 0);
    }
    this.#cluster = cluster;
    this.#host = host;
    cluster.stats.upstream_rq_total.inc();
    cluster.stats.upstream_rq_active.inc();
    host.activeRequests++;
    host.stats.rq_total++;
    if (config.timeoutMs > 0) {
      // a zero server_uri.timeout means no deadline, as in Envoy's async client
      this.#timer = new TimerEntry(this);
      ctx.timers.arm(this.#timer, config.timeoutMs, 0);
    }
    const req = authzRequest(config, this.input, this.routeCtx, this.client.now);
    if (this.span !== null) this.span.injectContext(req.headers);
    let head: Uint8Array;
    try {
      head = encodeRequestHead(req.method, req.path, req.headers, { authority: req.authority });
    } catch (err) {
      // a value HTTP/1.1 cannot carry (from headers_to_add or the client): the service is not to blame
      if (log.enabled("debug")) log.debug(`ext_authz HTTP request not sent: ${(err as Error).message}`);
      return this.#finish(emptyResponse(CheckStatus.Error), false, 0);
    }
    for (let attempt = 0;; attempt++) {
      const up = await this.#acquire(cluster, host);
      if (up === null) return;
      let res: { head: ResponseHead; body: string; reusable: boolean } | null;
      try {
        await connWriteAll(up.conn, head);
        if (req.body !== null) await connWriteAll(up.conn, req.body);
        res = await this.#read(up, req.method);
      } catch {
        res = null;
      }
      if (this.#done) return;
      if (res === null) {
        // a kept-alive connection the service closed while idle: once more on another connection
        if (up.reused && attempt === 0) {
          this.#up = null;
          up.h1.endResponse();
          up.release(false);
          continue;
        }
        return this.#finish(emptyResponse(CheckStatus.Error), false, 503);
      }
      cluster.stats.recordResponseCode(res.head.status);
      const decision = toAuthzResponse(config, res.head.status, res.head.headers, res.body);
      return this.#finish(decision, res.reusable, res.head.status);
    }
  }

  async #acquire(cluster: Cluster, host: Host): Promise<UpstreamConnection | null> {
    let acq: AcquireResult | null = cluster.takeIdleHttp1(host);
    if (acq === null) {
      this.#acquiring = true;
      acq = await cluster.acquireHttp1(host, this);
      this.#acquiring = false;
    }
    if (!acq.ok) {
      if (log.enabled("debug")) log.debug(`ext_authz HTTP call: no connection (${acq.detail})`);
      const connectFailed = acq.reason === "connect_failure" || acq.reason === "connect_timeout";
      this.#finish(emptyResponse(CheckStatus.Error), false, connectFailed ? 503 : 0);
      return null;
    }
    if (this.#done) {
      acq.connection.release(true);
      return null;
    }
    this.#up = acq.connection;
    return acq.connection;
  }

  /**
   * Reads the response head and body with the connection's HTTP/1.1 codec; null when the connection ended
   * first (or the call is over). Throws on a malformed response.
   */
  async #read(
    up: UpstreamConnection,
    method: string,
  ): Promise<{ head: ResponseHead; body: string; reusable: boolean } | null> {
    const h1 = up.h1;
    let head: ResponseHead;
    try {
      head = await h1.readResponseHead(method);
    } catch (e) {
      if (e instanceof H1ClosedError) return null;
      throw e;
    }
    this.#parts = [];
    this.#total = 0;
    for (;;) {
      const ev = h1.nextBody();
      if (ev === BodyEvent.Done) break;
      if (ev === BodyEvent.Data) this.#keep(h1.buf, h1.dataStart, h1.dataEnd);
      else if (this.#done || !h1.received(await h1.read())) return null;
    }
    if (this.#done) return null;
    const parts = this.#parts;
    const body = parts.length === 0
      ? ""
      : decoder.decode(parts.length === 1 ? parts[0] : concat(parts, this.#total));
    return { head, body, reusable: h1.reusable };
  }

  /** Keeps a copy of body bytes [from, to). */
  #keep(buf: Uint8Array, from: number, to: number): void {
    this.#total += to - from;
    if (this.#total > MAX_BODY) throw new Error("Authorization response body too large");
    this.#parts!.push(buf.slice(from, to));
  }

  /** Resolves the call once: releases the connection and the breaker slot, records the outcome. */
  #finish(res: AuthzResponse, reusable: boolean, outcome: number): void {
    if (this.#done) return;
    this.#done = true;
    const ctx = this.client.ctx;
    if (this.#timer !== null) ctx.timers.disarm(this.#timer);
    const cluster = this.#cluster;
    if (this.#acquiring && cluster !== null) cluster.cancelAcquire(this);
    const up = this.#up;
    if (up !== null) {
      this.#up = null;
      up.h1.endResponse();
      up.release(reusable);
    }
    const host = this.#host;
    if (cluster !== null && host !== null) {
      if (outcome > 0) cluster.recordOutcome(host, outcome);
      cluster.circuitBreakers.forPriority(0).releaseRequest();
      cluster.stats.upstream_rq_active.dec();
      cluster.stats.upstream_rq_completed.inc();
      host.activeRequests--;
      if (reusable) host.stats.rq_success++;
      else host.stats.rq_error++;
    }
    this.#resolve(res);
  }
}

function concat(parts: Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}
