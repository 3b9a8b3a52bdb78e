/**
 * One attempt of a routed request over an HTTP/2 upstream stream: asks the cluster's HTTP/2 pool for a stream
 * (within the circuit breakers), sends the head, the buffered and streamed body (flow control: a held-back
 * chunk delays the downstream read) and the trailers, and forwards the response head, body and trailers
 * downstream in order; received bytes are acknowledged (WINDOW_UPDATE) only once written downstream, so a
 * slow client bounds what the upstream may send. Resets before the head go back to the router (retries).
 */
import { ResponseFlag } from "../../../../common/response_flags.ts";
import { type TimeoutTarget, TimerEntry } from "../../../../common/timer_wheel.ts";
import type { H2ClientConnection } from "../../../../http/h2/client.ts";
import { ErrorCode } from "../../../../http/h2/constants.ts";
import type { H2Head } from "../../../../http/h2/head.ts";
import { type H2Stream, type H2StreamHandler, ResetReason } from "../../../../http/h2/stream.ts";
import type { HeaderMap } from "../../../../http/headers.ts";
import type { PriorityBreakers } from "../../../../upstream/circuit_breaker.ts";
import type { Cluster, ConnectFailure, H2StreamRequester, Host } from "../../../../upstream/types.ts";
import { type Attempt, AttemptFailure, type AttemptOwner } from "./attempt.ts";
import { type GrpcMethodStats, grpcMethodStats, grpcStatusOf, isGrpcRequest } from "./grpc_stats.ts";
import { H2ResponseQueue } from "./h2_response.ts";

const EMPTY = new Uint8Array(0);

/** How `H2UpstreamRequest.start` ended. */
export const H2Start = {
  /** The attempt failed (the owner was told) or was aborted. */
  Failed: 0,
  /** The stream is open and the request flowing. */
  Started: 1,
  /** ALPN chose HTTP/1.1 for the host: run this attempt over HTTP/1.1 instead (nothing was counted). */
  Http1: 2,
} as const;
/** One of H2Start. */
export type H2Start = typeof H2Start[keyof typeof H2Start];

/** One HTTP/2 attempt. */
export class H2UpstreamRequest implements Attempt, H2StreamRequester, H2StreamHandler, TimeoutTarget {
  /** The stream while open. */
  stream: H2Stream | null = null;
  /** True once the whole request went upstream. */
  requestSent = false;
  /** The whole upstream response is in hand. */
  upstreamComplete = false;
  /** The response head was accepted by the router. */
  headersForwarded = false;
  /** HTTP/2 upstreams never tunnel here (upgrades use HTTP/1.1). */
  readonly tunnel = false;
  /** Monotonic start of the attempt (set by the router). */
  startMono = 0;
  /** Monotonic time of the response head, then of its end (0 before any). */
  rxMono = 0;
  #head: H2Head | null = null;
  #ready = false;
  #finished = false;
  #aborted = false;
  #inPool = false;
  #holdsRequest = false;
  #counted = false;
  #perTry: TimerEntry | null = null;
  #perTryMs = 0;
  #resolveStart: ((r: H2Start) => void) | null = null;
  #resolveWritable: (() => void) | null = null;
  #res: H2ResponseQueue | null = null;
  #grpc: GrpcMethodStats | null = null;

  constructor(
    readonly owner: AttemptOwner,
    readonly cluster: Cluster,
    readonly host: Host,
    readonly breakers: PriorityBreakers,
    readonly priority: number,
  ) {}

  get finished(): boolean {
    return this.#finished;
  }

  get ready(): boolean {
    return this.#ready && !this.#finished;
  }

  get active(): boolean {
    return this.stream !== null || this.#inPool;
  }

  /** Takes a request slot and asks the pool for a stream; resolves once the request flows (or failed). */
  start(head: H2Head): Promise<H2Start> {
    if (!this.breakers.tryRequest()) {
      this.cluster.circuitBreakers.stats.upstream_rq_pending_overflow.inc();
      this.#finish(false);
      this.owner.onAttemptFailed(this, AttemptFailure.Overflow, "overflow");
      return Promise.resolve(H2Start.Failed);
    }
    this.#holdsRequest = true;
    this.#head = head;
    const p = new Promise<H2Start>((r) => this.#resolveStart = r);
    this.#inPool = true;
    this.cluster.newH2Stream!(this.host, this);
    return p;
  }

  #settle(r: H2Start): void {
    const f = this.#resolveStart;
    this.#resolveStart = null;
    f?.(r);
  }

  onPoolReady(h2: H2ClientConnection, _reused: boolean): void {
    this.#inPool = false;
    if (this.#aborted) return;
    const owner = this.owner;
    const cluster = this.cluster;
    const stats = cluster.stats;
    this.#counted = true;
    stats.upstream_rq_total.inc();
    stats.upstream_rq_active.inc();
    this.host.activeRequests++;
    this.host.stats.rq_total++;
    const head = this.#head!;
    this.#head = null;
    if (isGrpcRequest(head.headers)) {
      this.#grpc = grpcMethodStats(cluster, owner.ctx.stats, head.path);
    }
    const body = owner.body;
    const trailers = owner.requestTrailers;
    const endNow = owner.bodyEnd && (body === null || body.length === 0) && trailers === null;
    const st = h2.request(head, endNow, this);
    if (st === null) {
      // the connection lost its room meanwhile (GOAWAY): as a refused stream, safe to retry
      this.#fail(AttemptFailure.Refused, "remote_refused_stream_reset");
      this.#settle(H2Start.Failed);
      return;
    }
    st.autoConsume = false;
    this.stream = st;
    if (!endNow) {
      if (body !== null) { for (let i = 0; i < body.length; i++) st.sendData(body[i], false); }
      if (owner.bodyEnd) {
        if (trailers !== null) st.sendTrailers(trailers);
        else st.sendData(EMPTY, true);
      }
    }
    this.#ready = true;
    if (owner.bodyEnd) this.#endRequest();
    this.#settle(H2Start.Started);
  }

  onPoolFailure(reason: ConnectFailure | "http1", detail: string): void {
    this.#inPool = false;
    if (this.#aborted) return;
    if (reason === "http1") {
      this.#holdsRequest = false;
      this.#finished = true;
      this.breakers.releaseRequest();
      this.#settle(H2Start.Http1);
      return;
    }
    this.#finish(false);
    if (reason === "overflow") this.owner.onAttemptFailed(this, AttemptFailure.Overflow, detail);
    else {
      this.cluster.recordOutcome(this.host, 503);
      this.owner.onAttemptFailed(this, AttemptFailure.ConnectFailure, detail);
    }
    this.#settle(H2Start.Failed);
  }

  async sendData(data: Uint8Array, endStream: boolean): Promise<boolean> {
    const st = this.stream;
    if (st === null || this.#finished) return false;
    if (!st.sendData(data, endStream)) {
      // part of `data` is held by the codec until there is window: wait before it may be reused
      await new Promise<void>((r) => this.#resolveWritable = r);
    }
    if (endStream) this.#endRequest();
    return !this.#finished;
  }

  sendTrailers(): Promise<void> {
    const st = this.stream;
    if (st !== null && !this.#finished) {
      st.sendTrailers(this.owner.requestTrailers!);
      this.#endRequest();
    }
    return Promise.resolve();
  }

  #endRequest(): void {
    this.requestSent = true;
    if (this.#perTryMs > 0 && !this.#finished && !this.headersForwarded) {
      this.#perTry ??= new TimerEntry(this);
      this.owner.ctx.timers.arm(this.#perTry, this.#perTryMs, 0);
    }
  }

  setPerTryTimeout(ms: number): void {
    this.#perTryMs = ms;
  }

  onTimeout(): void {
    if (this.#finished || this.headersForwarded) return;
    this.host.stats.rq_timeout++;
    this.cluster.recordOutcome(this.host, 504);
    this.#resetStream();
    this.#finish(false);
    this.owner.onAttemptFailed(this, AttemptFailure.PerTryTimeout, "per_try_timeout");
  }

  abort(): void {
    if (this.#aborted) return;
    this.#aborted = true;
    if (this.#inPool) {
      this.#inPool = false;
      this.cluster.cancelH2Stream?.(this);
    }
    this.#resetStream();
    this.#finish(false);
    this.#settle(H2Start.Failed);
  }

  #resetStream(): void {
    const st = this.stream;
    if (st === null) return;
    this.stream = null;
    if (!st.isClosed) st.reset(ErrorCode.CANCEL);
  }

  // ---- H2StreamHandler ----

  onHeaders(_st: H2Stream, head: H2Head, endStream: boolean): void {
    if (this.#finished) return;
    const owner = this.owner;
    const now = owner.ctx.clock.monotonic();
    this.rxMono = now;
    const info = owner.cb.streamInfo;
    if (info.firstUpstreamRxMono === 0) info.firstUpstreamRxMono = now;
    owner.onUpstreamActivity(now);
    if (this.#perTry !== null) owner.ctx.timers.disarm(this.#perTry);
    const status = head.status;
    const headers = head.headers;
    const cluster = this.cluster;
    cluster.recordOutcome(this.host, status);
    cluster.stats.recordResponseCode(status);
    if (headers.has("x-envoy-immediate-health-check-fail")) {
      cluster.reportImmediateHealthCheckFail?.(this.host);
    }
    if (!owner.onAttemptHeaders(this, status, headers)) {
      this.#resetStream();
      this.#finish(false);
      return;
    }
    this.headersForwarded = true;
    const res = this.#res = new H2ResponseQueue(this, status, headers, endStream);
    if (endStream) this.#ended(headers);
    res.kick();
  }

  onData(_st: H2Stream, data: Uint8Array, endStream: boolean): void {
    if (this.#finished) return;
    const now = endStream ? this.rxMono = this.owner.ctx.clock.monotonic() : 0;
    this.owner.onUpstreamActivity(now);
    const res = this.#res!;
    if (data.length > 0) res.chunks.push(data.slice());
    if (endStream) this.#ended(null);
    res.kick();
  }

  onTrailers(_st: H2Stream, trailers: HeaderMap): void {
    if (this.#finished) return;
    const now = this.owner.ctx.clock.monotonic();
    this.rxMono = now;
    this.owner.onUpstreamActivity(now);
    const res = this.#res!;
    res.trailers = trailers;
    this.#ended(trailers);
    res.kick();
  }

  onReset(_st: H2Stream, _code: number, reason: ResetReason): void {
    this.stream = null;
    if (this.#finished || this.upstreamComplete) return;
    this.cluster.stats.upstream_rq_rx_reset.inc();
    if (this.headersForwarded) {
      this.#finish(false);
      if (reason === ResetReason.CONNECTION) this.owner.onAttemptResetAfterHeaders(this);
      else {
        this.owner.onAttemptResetAfterHeaders(this, ResponseFlag.UpstreamRemoteReset, "remote_reset");
      }
      return;
    }
    if (reason === ResetReason.REFUSED) this.#fail(AttemptFailure.Refused, "remote_refused_stream_reset");
    else if (reason === ResetReason.REMOTE) this.#fail(AttemptFailure.RemoteReset, "remote_reset");
    else if (reason === ResetReason.LOCAL) this.#fail(AttemptFailure.ProtocolError, "protocol_error");
    else this.#fail(AttemptFailure.Termination, "connection_termination");
  }

  onWritable(): void {
    const f = this.#resolveWritable;
    this.#resolveWritable = null;
    f?.();
  }

  #fail(why: AttemptFailure, detail: string): void {
    this.#resetStream();
    this.#finish(false);
    if (why !== AttemptFailure.Refused) this.cluster.recordOutcome(this.host, 503);
    this.owner.onAttemptFailed(this, why, detail);
  }

  /** The response is complete upstream: gRPC stats. */
  #ended(block: HeaderMap | null): void {
    const res = this.#res!;
    res.remoteEnded = true;
    this.upstreamComplete = true;
    if (this.#grpc !== null) this.#grpc.charge(grpcStatusOf(res.status, block));
  }

  /** The whole response went downstream (H2ResponseQueue). */
  complete(): void {
    if (this.#finished) return;
    this.#finish(true);
    this.#resetStream(); // still sending the request after a complete response: stop (RFC 9113 §8.1)
  }

  /** Upstream request bookkeeping, once. */
  #finish(success: boolean): void {
    if (this.#finished) return;
    this.#finished = true;
    if (this.#perTry !== null) this.owner.ctx.timers.disarm(this.#perTry);
    this.onWritable();
    if (!this.#holdsRequest) return;
    this.#holdsRequest = false;
    this.breakers.releaseRequest();
    if (!this.#counted) return;
    const stats = this.cluster.stats;
    const host = this.host;
    stats.upstream_rq_active.dec();
    stats.upstream_rq_completed.inc();
    host.activeRequests--;
    if (success) {
      const end = this.rxMono || this.owner.ctx.clock.monotonic();
      stats.upstream_rq_time.record(end - this.startMono);
      host.stats.rq_success++;
    } else host.stats.rq_error++;
  }
}
