/**
 * One attempt of a routed request over an HTTP/2 upstream stream: asks the cluster's HTTP/2 pool for a stream
 * (within the circuit breakers), sends the head, the buffered and streamed body (flow control: a held-back
 * chunk delays the downstream read) and the trailers, and forwards the response head, body and trailers
 * downstream in order; received bytes are acknowledged (WINDOW_UPDATE) only once written downstream, so a
 * slow client bounds what the upstream may send. Resets before the head go back to the router (retries).
 * Bookkeeping, the per-try timeout and failure reporting are UpstreamAttempt's.
 */
import { ResponseFlag } from "../../../../common/response_flags.ts";
import type { H2ClientConnection } from "../../../../http/h2/client.ts";
import { ErrorCode } from "../../../../http/h2/constants.ts";
import type { H2Head } from "../../../../http/h2/head.ts";
import { type H2Stream, type H2StreamHandler, ResetReason } from "../../../../http/h2/stream.ts";
import type { HeaderMap } from "../../../../http/headers.ts";
import { type ConnectFailure, type H2StreamRequester, UpstreamError } from "../../../../upstream/types.ts";
import { type GrpcMethodStats, grpcMethodStats, grpcStatusOf, isGrpcRequest } from "./grpc_stats.ts";
import { H2ResponseQueue } from "./h2_response.ts";
import { UpstreamAttempt } from "./upstream_attempt.ts";

const EMPTY = new Uint8Array(0);

/** `#startResult` outside `start`, and inside it before the pool answered. */
const NOT_STARTING = -1;
const STARTING = -2;

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
export class H2UpstreamRequest extends UpstreamAttempt implements H2StreamRequester, H2StreamHandler {
  /** The stream while open. */
  stream: H2Stream | null = null;
  #head: H2Head | null = null;
  #inPool = false;
  #resolveStart: ((r: H2Start) => void) | null = null;
  /** While `start` asks the pool: STARTING, or how it ended if the pool answered synchronously. */
  #startResult: number = NOT_STARTING;
  #resolveWritable: (() => void) | null = null;
  #res: H2ResponseQueue | null = null;
  #grpc: GrpcMethodStats | null = null;

  /** True while the attempt holds a stream or waits for one. */
  get active(): boolean {
    return this.stream !== null || this.#inPool;
  }

  /**
   * Takes a request slot and asks the pool for a stream: how the start ended when the pool answered at once (a
   * connection with room: the common case), else a promise of it.
   */
  start(head: H2Head): H2Start | Promise<H2Start> {
    if (!this.takeRequest()) return H2Start.Failed;
    this.#head = head;
    this.#inPool = true;
    this.#startResult = STARTING;
    this.cluster.newH2Stream!(this.host, this);
    const r = this.#startResult;
    this.#startResult = NOT_STARTING;
    if (r !== STARTING) return r as H2Start;
    return new Promise<H2Start>((resolve) => this.#resolveStart = resolve);
  }

  #settle(r: H2Start): void {
    if (this.#startResult === STARTING) {
      this.#startResult = r;
      return;
    }
    const f = this.#resolveStart;
    this.#resolveStart = null;
    f?.(r);
  }

  onPoolReady(h2: H2ClientConnection, _reused: boolean): void {
    this.#inPool = false;
    if (this.aborted) return;
    const owner = this.owner;
    this.countRequest();
    const head = this.#head!;
    this.#head = null;
    if (isGrpcRequest(head.headers)) {
      this.#grpc = grpcMethodStats(this.cluster, owner.ctx.stats, head.path);
    }
    const body = owner.body;
    const trailers = owner.requestTrailers;
    const endNow = owner.bodyEnd && (body === null || body.length === 0) && trailers === null;
    const st = h2.request(head, endNow, this);
    if (st === null) {
      // the connection lost its room meanwhile (GOAWAY): as a refused stream, safe to retry
      this.fail(new UpstreamError("remote_refused_stream_reset"), 0);
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
    this.markReady();
    if (owner.bodyEnd) this.#endRequest();
    this.#settle(H2Start.Started);
  }

  onPoolFailure(reason: ConnectFailure | "http1", detail: string): void {
    this.#inPool = false;
    if (this.aborted) return;
    if (reason === "http1") {
      this.handOver();
      this.#settle(H2Start.Http1);
      return;
    }
    this.poolFailed(reason, detail);
    this.#settle(H2Start.Failed);
  }

  sendData(data: Uint8Array, endStream: boolean): boolean | Promise<boolean> {
    const st = this.stream;
    if (st === null || this.finished) return false;
    if (!st.sendData(data, endStream)) {
      // part of `data` is held by the codec until there is window: wait before it may be reused
      return new Promise<void>((r) => this.#resolveWritable = r).then(() => this.#dataSent(endStream));
    }
    return this.#dataSent(endStream);
  }

  #dataSent(endStream: boolean): boolean {
    if (endStream) this.#endRequest();
    return !this.finished;
  }

  sendTrailers(): Promise<void> {
    const st = this.stream;
    if (st !== null && !this.finished) {
      st.sendTrailers(this.owner.requestTrailers!);
      this.#endRequest();
    }
    return Promise.resolve();
  }

  #endRequest(): void {
    this.requestSent = true;
    this.armPerTry();
  }

  override abort(): void {
    super.abort();
    this.#settle(H2Start.Failed);
  }

  protected cancelPending(): void {
    if (this.#inPool) {
      this.#inPool = false;
      this.cluster.cancelH2Stream?.(this);
    }
  }

  /** Resets the stream (CANCEL) unless closed. */
  protected release(): void {
    const st = this.stream;
    if (st === null) return;
    this.stream = null;
    if (!st.isClosed) st.reset(ErrorCode.CANCEL);
  }

  // ---- H2StreamHandler ----

  onHeaders(_st: H2Stream, head: H2Head, endStream: boolean): void {
    if (this.finished) return;
    this.noteReceived();
    const status = head.status;
    const headers = head.headers;
    if (!this.acceptHead(status, headers)) return;
    const res = this.#res = new H2ResponseQueue(this, status, headers, endStream);
    if (endStream) this.#ended(headers);
    res.kick();
  }

  onData(_st: H2Stream, data: Uint8Array, endStream: boolean): void {
    if (this.finished) return;
    const now = endStream ? this.rxMono = this.owner.ctx.clock.monotonic() : 0;
    this.owner.onUpstreamActivity(now);
    const res = this.#res!;
    if (data.length > 0) res.chunks.push(data.slice());
    if (endStream) this.#ended(null);
    res.kick();
  }

  onTrailers(_st: H2Stream, trailers: HeaderMap): void {
    if (this.finished) return;
    this.noteReceived();
    const res = this.#res!;
    res.trailers = trailers;
    this.#ended(trailers);
    res.kick();
  }

  onReset(_st: H2Stream, _code: number, reason: ResetReason): void {
    this.stream = null;
    if (this.finished || this.upstreamComplete) return;
    this.cluster.stats.upstream_rq_rx_reset.inc();
    if (this.headersForwarded) {
      if (reason === ResetReason.CONNECTION) {
        this.resetAfterHeaders(ResponseFlag.UpstreamConnectionTermination, "connection_termination");
      } else this.resetAfterHeaders(ResponseFlag.UpstreamRemoteReset, "remote_reset");
      return;
    }
    if (reason === ResetReason.REFUSED) this.fail(new UpstreamError("remote_refused_stream_reset"), 0);
    else if (reason === ResetReason.REMOTE) this.fail(new UpstreamError("remote_reset"), 503);
    else if (reason === ResetReason.LOCAL) this.fail(new UpstreamError("protocol_error"), 503);
    else this.fail(new UpstreamError("connection_termination"), 503);
  }

  onWritable(): void {
    const f = this.#resolveWritable;
    this.#resolveWritable = null;
    f?.();
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
    if (this.finished) return;
    this.finish(true);
    this.release(); // still sending the request after a complete response: stop (RFC 9113 §8.1)
  }

  /** Bookkeeping (UpstreamAttempt), and a body write waiting for window gives up. */
  protected override finish(success: boolean): void {
    if (this.finished) return;
    super.finish(success);
    this.onWritable();
  }
}
