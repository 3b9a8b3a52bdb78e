/**
 * One attempt of a routed request: takes a connection from the cluster's pool (within the circuit breakers),
 * writes the request, reads the response and streams it downstream once the router accepts its head.
 * Failures before the head was accepted go back to the router, which retries or answers locally.
 */
import { connWrite } from "../../../../network/raw_io.ts";
import { type TimeoutTarget, TimerEntry } from "../../../../common/timer_wheel.ts";
import { chunkFrame, LAST_CHUNK } from "../../../../http/h1_glue.ts";
import type { HeaderMap } from "../../../../http/headers.ts";
import type { PriorityBreakers } from "../../../../upstream/circuit_breaker.ts";
import type { AcquireOptions, Cluster, Host, UpstreamConnection } from "../../../../upstream/types.ts";
import { localAddressOf, PooledConnection } from "../../../../upstream/pooled_connection.ts";
import { type Attempt, AttemptFailure, type AttemptOwner } from "./attempt.ts";
import { readResponse } from "./response_reader.ts";

const EMPTY = new Uint8Array(0);
const ignore = () => {};

/** One attempt; created per try (once per request without retries). */
export class UpstreamRequest implements Attempt, TimeoutTarget, AcquireOptions {
  /** The connection while the attempt owns one. */
  up: UpstreamConnection | null = null;
  /** True once the whole request went upstream. */
  requestSent = false;
  /** The whole upstream response is in hand. */
  upstreamComplete = false;
  /** The response head went downstream. */
  headersForwarded = false;
  /** Monotonic start of the attempt (set by the router). */
  startMono = 0;
  /** Monotonic time of the last upstream read (0 before any). */
  rxMono = 0;
  #chunked = false;
  #ready = false;
  #finished = false;
  #aborted = false;
  #acquiring = false;
  #holdsRequest = false;
  #tunnel = false;
  #perTry: TimerEntry | null = null;
  #perTryMs = 0;
  /** Read window after the last read (response_reader). */
  lastStart = 0;
  lastEnd = 0;

  constructor(
    readonly owner: AttemptOwner,
    readonly cluster: Cluster,
    readonly host: Host,
    readonly breakers: PriorityBreakers,
    readonly priority: number,
  ) {}

  /** True once the attempt ended (completed, failed or aborted). */
  get finished(): boolean {
    return this.#finished;
  }

  /** True once the head and the buffered body went out: new body bytes may be sent directly. */
  get ready(): boolean {
    return this.#ready && !this.#finished;
  }

  /** True once the upstream accepted an upgrade (101). */
  get tunnel(): boolean {
    return this.#tunnel;
  }

  /** True while the attempt holds a connection. */
  get active(): boolean {
    return this.up !== null;
  }

  /**
   * Takes a request slot and a connection, writes `head`, then the owner's buffered body (catching up with
   * chunks that arrive meanwhile). Resolves true when the request is flowing and the response is being read;
   * on false the owner was told why (unless the attempt was aborted meanwhile).
   */
  async start(head: Uint8Array, chunked: boolean): Promise<boolean> {
    const cluster = this.cluster;
    const host = this.host;
    if (!this.breakers.tryRequest()) {
      cluster.circuitBreakers.stats.upstream_rq_pending_overflow.inc();
      this.#finish(false);
      this.owner.onAttemptFailed(this, AttemptFailure.Overflow, "overflow");
      return false;
    }
    this.#holdsRequest = true;
    this.#chunked = chunked;
    const stats = cluster.stats;
    stats.upstream_rq_total.inc();
    stats.upstream_rq_active.inc();
    host.activeRequests++;
    host.stats.rq_total++;
    for (let attempt = 0; attempt < 2; attempt++) {
      this.#acquiring = true;
      const acq = await cluster.acquireHttp1(host, this);
      this.#acquiring = false;
      if (this.#aborted) {
        if (acq.ok) acq.connection.release(true);
        return false;
      }
      if (!acq.ok) {
        this.#finish(false);
        if (acq.reason === "overflow") {
          this.owner.onAttemptFailed(this, AttemptFailure.Overflow, acq.detail);
        } else {
          cluster.recordOutcome(host, 503);
          this.owner.onAttemptFailed(this, AttemptFailure.ConnectFailure, acq.detail);
        }
        return false;
      }
      const up = acq.connection;
      this.up = up;
      // "" when closed under us: the write below fails and we retry
      const local = up instanceof PooledConnection ? up.localAddress : localAddressOf(up.conn);
      if (local !== "") this.owner.cb.streamInfo.upstreamLocalAddress = local;
      if (await this.#write(head)) break;
      // a reused keep-alive connection the upstream closed: retry once on a fresh one
      this.up = null;
      up.release(false);
      if (this.#aborted) return false;
      if (!up.reused || attempt === 1) {
        this.#finish(false);
        cluster.recordOutcome(host, 503);
        this.owner.onAttemptFailed(this, AttemptFailure.Termination, "connection_termination");
        return false;
      }
    }
    const owner = this.owner;
    if (owner.body !== null) {
      // replay what the router buffered (it may grow while we write: catch up by index)
      for (let i = 0;; i++) {
        const body = owner.body;
        if (body === null) return false; // abandoned (too large): the router answers
        if (i >= body.length) break;
        if (!(await this.#write(chunked ? chunkFrame(body[i], false) : body[i]))) return this.#failWrite();
        if (this.#aborted) return false;
      }
      if (owner.bodyEnd && chunked) {
        if (!(await this.#write(owner.trailersBlock ?? LAST_CHUNK))) return this.#failWrite();
        if (this.#aborted) return false;
      }
    }
    this.#ready = true;
    if (owner.bodyEnd) this.endRequest();
    this.#read();
    return true;
  }

  #failWrite(): false {
    if (!this.#aborted) this.upstreamReset();
    return false;
  }

  /** Sends request body bytes (framed when chunked); false when the connection failed (the owner was told). */
  async sendData(data: Uint8Array, endStream: boolean): Promise<boolean> {
    if (this.up === null || this.#finished) return false;
    let out: Uint8Array = data;
    if (this.#chunked) out = data.length > 0 ? chunkFrame(data, endStream) : endStream ? LAST_CHUNK : EMPTY;
    if (out.length > 0 && !(await this.#write(out))) {
      this.upstreamReset();
      return false;
    }
    if (endStream) this.endRequest();
    return true;
  }

  /** Sends the owner's request trailers (encoded as the chunked trailer block). */
  async sendTrailers(): Promise<void> {
    if (this.up === null || this.#finished) return;
    if (this.#chunked && !(await this.#write(this.owner.trailersBlock!))) {
      this.upstreamReset();
      return;
    }
    this.endRequest();
  }

  /** The whole request went upstream: half-closes tunnels and starts the per-try timeout. */
  endRequest(): void {
    this.requestSent = true;
    if (this.owner.tunnelRequested && this.#tunnel && this.up) {
      (this.up.conn as Deno.TcpConn).closeWrite().catch(() => {});
    }
    if (this.#perTryMs > 0 && !this.#finished) {
      this.#perTry ??= new TimerEntry(this);
      this.owner.ctx.timers.arm(this.#perTry, this.#perTryMs, 0);
    }
  }

  /** Sets the per-try timeout (armed when the request is complete). */
  setPerTryTimeout(ms: number): void {
    this.#perTryMs = ms;
  }

  onTimeout(): void {
    if (this.#finished || this.headersForwarded) return;
    this.host.stats.rq_timeout++;
    this.cluster.recordOutcome(this.host, 504);
    this.#closeUp();
    this.#finish(false);
    this.owner.onAttemptFailed(this, AttemptFailure.PerTryTimeout, "per_try_timeout");
  }

  /** The router gives up on this attempt (global timeout, downstream reset, retry): release everything. */
  abort(): void {
    if (this.#aborted) return;
    this.#aborted = true;
    if (this.#acquiring) this.cluster.cancelAcquire(this);
    this.#closeUp();
    this.#finish(false);
  }

  async #write(data: Uint8Array): Promise<boolean> {
    const up = this.up;
    if (up === null) return false;
    try {
      let off = 0;
      while (off < data.length) off += await connWrite(up.conn, off === 0 ? data : data.subarray(off));
      this.cluster.stats.upstream_cx_tx_bytes_total.inc(data.length);
      return true;
    } catch {
      return false;
    }
  }

  #read(): void {
    // #readResponse catches everything itself; this only keeps a rejection from going unhandled
    readResponse(this).catch(ignore);
  }

  /** The response head arrived: true when the router lets it through (else the attempt is closed). */
  headArrived(status: number, headers: HeaderMap): boolean {
    if (this.#perTry !== null) this.owner.ctx.timers.disarm(this.#perTry);
    const cluster = this.cluster;
    cluster.recordOutcome(this.host, status);
    cluster.stats.recordResponseCode(status);
    if (headers.has("x-envoy-immediate-health-check-fail")) {
      cluster.reportImmediateHealthCheckFail?.(this.host);
    }
    if (!this.owner.onAttemptHeaders(this, status, headers)) {
      this.#closeUp();
      this.#finish(false);
      return false;
    }
    if (status === 101) this.#tunnel = true;
    this.headersForwarded = true;
    return true;
  }

  /** The response head was malformed. */
  protocolError(): void {
    this.#closeUp();
    this.#finish(false);
    this.owner.onAttemptFailed(this, AttemptFailure.ProtocolError, "protocol_error");
  }

  /** The whole response went downstream: bookkeeping, and the connection goes back to the pool. */
  complete(reusable: boolean): void {
    this.#finish(true);
    const u = this.up;
    if (u !== null) {
      this.up = null;
      u.readStart = 0;
      u.readEnd = 0;
      u.lastRxMono = this.rxMono;
      u.release(reusable && this.requestSent && !this.#tunnel);
    }
  }

  /** The connection failed mid-exchange. */
  upstreamReset(): void {
    if (this.#finished) return;
    this.cluster.stats.upstream_rq_rx_reset.inc();
    this.#closeUp();
    this.#finish(false);
    if (this.headersForwarded) {
      this.owner.onAttemptResetAfterHeaders(this);
      return;
    }
    this.cluster.recordOutcome(this.host, 503);
    this.owner.onAttemptFailed(this, AttemptFailure.Termination, "connection_termination");
  }

  #closeUp(): void {
    const up = this.up;
    if (up === null) return;
    this.up = null;
    up.release(false);
  }

  /** Upstream request bookkeeping, once. */
  #finish(success: boolean): void {
    if (this.#finished) return;
    this.#finished = true;
    if (this.#perTry !== null) this.owner.ctx.timers.disarm(this.#perTry);
    if (!this.#holdsRequest) return;
    this.#holdsRequest = false;
    this.breakers.releaseRequest();
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
