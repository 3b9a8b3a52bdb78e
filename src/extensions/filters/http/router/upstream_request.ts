/**
 * One HTTP/1.1 attempt of a routed request: takes a connection from the cluster's pool (within the circuit
 * breakers), writes the request, reads the response (response_reader.ts) and streams it downstream once the
 * router accepts its head. Bookkeeping, the per-try timeout and failure reporting are UpstreamAttempt's.
 */
import { ResponseFlag } from "../../../../common/response_flags.ts";
import { connWrite } from "../../../../network/raw_io.ts";
import { chunkFrame, LAST_CHUNK } from "../../../../http/h1_glue.ts";
import type { HeaderMap } from "../../../../http/headers.ts";
import { type AcquireOptions, type UpstreamConnection, UpstreamError } from "../../../../upstream/types.ts";
import { localAddressOf, PooledConnection } from "../../../../upstream/pooled_connection.ts";
import { readResponse } from "./response_reader.ts";
import { UpstreamAttempt } from "./upstream_attempt.ts";

const EMPTY = new Uint8Array(0);
const ignore = () => {};

/** One HTTP/1.1 attempt; created per try (once per request without retries). */
export class UpstreamRequest extends UpstreamAttempt implements AcquireOptions {
  /** The connection while the attempt owns one. */
  up: UpstreamConnection | null = null;
  #chunked = false;
  #acquiring = false;

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
    if (!this.takeRequest()) return false;
    this.#chunked = chunked;
    this.countRequest();
    const cluster = this.cluster;
    for (let attempt = 0; attempt < 2; attempt++) {
      let acq = cluster.takeIdleHttp1(this.host);
      if (acq === null) {
        this.#acquiring = true;
        acq = await cluster.acquireHttp1(this.host, this);
        this.#acquiring = false;
      }
      if (this.aborted) {
        if (acq.ok) acq.connection.release(true);
        return false;
      }
      if (!acq.ok) {
        this.poolFailed(acq.reason, acq.detail);
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
      if (this.aborted) return false;
      if (!up.reused || attempt === 1) {
        this.fail(new UpstreamError("connection_termination"), 503);
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
        if (this.aborted) return false;
      }
      if (owner.bodyEnd && chunked) {
        if (!(await this.#write(owner.trailersBlock ?? LAST_CHUNK))) return this.#failWrite();
        if (this.aborted) return false;
      }
    }
    this.markReady();
    if (owner.bodyEnd) this.endRequest();
    this.#read();
    return true;
  }

  #failWrite(): false {
    if (!this.aborted) this.upstreamReset();
    return false;
  }

  /** Sends request body bytes (framed when chunked); false when the connection failed (the owner was told). */
  async sendData(data: Uint8Array, endStream: boolean): Promise<boolean> {
    if (this.up === null || this.finished) return false;
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
    if (this.up === null || this.finished) return;
    if (this.#chunked && !(await this.#write(this.owner.trailersBlock!))) {
      this.upstreamReset();
      return;
    }
    this.endRequest();
  }

  /** The whole request went upstream: half-closes tunnels and starts the per-try timeout. */
  endRequest(): void {
    this.requestSent = true;
    if (this.owner.tunnelRequested && this.tunnel && this.up) {
      (this.up.conn as Deno.TcpConn).closeWrite().catch(() => {});
    }
    this.armPerTry();
  }

  protected cancelPending(): void {
    if (this.#acquiring) this.cluster.cancelAcquire(this);
  }

  protected release(): void {
    const up = this.up;
    if (up === null) return;
    this.up = null;
    up.release(false);
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
    // readResponse catches everything itself; this only keeps a rejection from going unhandled
    readResponse(this).catch(ignore);
  }

  /** The response head arrived: true when the router lets it through (else the attempt is closed). */
  headArrived(status: number, headers: HeaderMap): boolean {
    if (!this.acceptHead(status, headers)) return false;
    if (status === 101) this.tunnel = true;
    return true;
  }

  /** The response head was malformed. */
  protocolError(): void {
    this.fail(new UpstreamError("protocol_error"), 0);
  }

  /** The whole response went downstream: bookkeeping, and the connection goes back to the pool. */
  complete(reusable: boolean): void {
    this.finish(true);
    const u = this.up;
    if (u !== null) {
      this.up = null;
      u.h1.endResponse();
      u.lastRxMono = this.rxMono;
      u.release(reusable && this.requestSent && !this.tunnel);
    }
  }

  /** The connection failed mid-exchange. */
  upstreamReset(): void {
    if (this.finished) return;
    this.cluster.stats.upstream_rq_rx_reset.inc();
    if (this.headersForwarded) {
      this.resetAfterHeaders(ResponseFlag.UpstreamConnectionTermination, "connection_termination");
    } else this.fail(new UpstreamError("connection_termination"), 503);
  }
}
