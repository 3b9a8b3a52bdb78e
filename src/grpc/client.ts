/**
 * A gRPC client over the project's HTTP/2 codec to a cluster (Envoy's `envoy_grpc`): one multiplexed
 * connection per host, reused by every call and re-opened when it closes, unary calls with a deadline on the
 * worker's timer wheel. Used by the rate-limit filters (ShouldRateLimit) and gRPC health checks.
 */
import type { TimeoutTarget, TimerWheel } from "../common/timer_wheel.ts";
import { TimerEntry } from "../common/timer_wheel.ts";
import { HeaderMap } from "../http/headers.ts";
import { decodeGrpcMessage, httpToGrpcStatus } from "../http/grpc_util.ts";
import { ErrorCode } from "../http/h2/constants.ts";
import { H2ClientConnection } from "../http/h2/client.ts";
import { requestHead } from "../http/h2/head.ts";
import type { H2Head } from "../http/h2/head.ts";
import type { H2Stream, H2StreamHandler } from "../http/h2/stream.ts";
import type { Cluster, Host, UpstreamConnection } from "../upstream/types.ts";
import { encodeGrpcFrame, GrpcFrameDecoder, GrpcStatus } from "./frame.ts";

/** A failed call: `status` is the gRPC status (from the server, or 14/4 for local failures). */
export class GrpcError extends Error {
  /** Makes an error carrying gRPC status `status`. */
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

/** Options of a channel. */
export interface GrpcChannelOptions {
  /** :authority of calls (default: the cluster name, as Envoy's envoy_grpc). */
  authority?: string;
  /** The worker's timer wheel (deadlines). */
  timers: TimerWheel;
  /** Largest response message accepted (default 4 MiB). */
  maxMessageBytes?: number;
}

interface HostConn {
  host: Host;
  upstream: UpstreamConnection;
  h2: H2ClientConnection;
}

/** Calls to one cluster (lazily resolved, so the cluster may be defined after the filter). */
export class GrpcChannel {
  readonly #cluster: () => Cluster | undefined;
  readonly #opts: GrpcChannelOptions;
  readonly #authority: string;
  #conns = new Map<Host, HostConn>();
  #connecting = new Map<Host, Promise<HostConn | GrpcError>>();
  #closed = false;

  /** A channel to the cluster `getCluster()` returns at call time. */
  constructor(readonly clusterName: string, getCluster: () => Cluster | undefined, opts: GrpcChannelOptions) {
    this.#cluster = getCluster;
    this.#opts = opts;
    this.#authority = opts.authority ?? clusterName;
  }

  /**
   * Makes a unary call to `path` ("/package.Service/Method") with a serialized request; resolves with the
   * serialized response or a GrpcError (never rejects). `timeoutMs` bounds the whole call, connecting included;
   * `metadata` adds request headers (initial metadata).
   */
  async unary(
    path: string,
    request: Uint8Array,
    timeoutMs: number,
    metadata: HeaderMap | null = null,
  ): Promise<Uint8Array | GrpcError> {
    if (this.#closed) return new GrpcError(GrpcStatus.UNAVAILABLE, "Channel closed");
    const call = new UnaryCall(this.#opts, timeoutMs);
    const conn = await Promise.race([this.#connection(), call.done as Promise<GrpcError>]);
    if (conn instanceof GrpcError) {
      call.finish(conn);
      return conn;
    }
    if (call.finished) return call.done;
    const headers = new HeaderMap();
    headers.addLower("content-type", "application/grpc");
    headers.addLower("te", "trailers");
    headers.addLower("grpc-timeout", `${Math.max(1, Math.ceil(timeoutMs))}m`);
    if (metadata !== null) {
      // initial metadata (a tracing span's context, say): lowercase names, after the call's own headers
      for (let i = 0; i < metadata.names.length; i++) headers.addLower(metadata.names[i], metadata.values[i]);
    }
    const head: H2Head = requestHead("POST", path, this.#authority, headers);
    const st = conn.h2.request(head, false, call);
    if (st === null) {
      call.finish(new GrpcError(GrpcStatus.UNAVAILABLE, "No stream capacity on the gRPC connection"));
      return call.done;
    }
    call.stream = st;
    st.sendData(encodeGrpcFrame(request), true);
    return call.done;
  }

  /** A connection to a host of the cluster (an existing one when open). */
  #connection(): Promise<HostConn | GrpcError> {
    const cluster = this.#cluster();
    if (!cluster) {
      return Promise.resolve(new GrpcError(GrpcStatus.UNAVAILABLE, `Unknown cluster ${this.clusterName}`));
    }
    for (const c of this.#conns.values()) {
      if (c.h2.available() > 0 && c.host.healthy) return Promise.resolve(c);
    }
    const host = cluster.chooseHost({});
    if (host === null) {
      return Promise.resolve(new GrpcError(GrpcStatus.UNAVAILABLE, `No healthy host in ${this.clusterName}`));
    }
    const existing = this.#conns.get(host);
    if (existing && existing.h2.available() > 0) return Promise.resolve(existing);
    let p = this.#connecting.get(host);
    if (!p) {
      p = this.#connect(cluster, host);
      this.#connecting.set(host, p);
      p.finally(() => this.#connecting.delete(host));
    }
    return p;
  }

  async #connect(cluster: Cluster, host: Host): Promise<HostConn | GrpcError> {
    const r = await cluster.connectTcp(host);
    if (!r.ok) {
      return new GrpcError(GrpcStatus.UNAVAILABLE, `Connect to ${host.addressString} failed: ${r.detail}`);
    }
    if (this.#closed) {
      r.connection.conn.close();
      cluster.tcpClosed(r.connection, true);
      return new GrpcError(GrpcStatus.UNAVAILABLE, "Channel closed");
    }
    const h2 = new H2ClientConnection(r.connection.conn);
    const hc: HostConn = { host, upstream: r.connection, h2 };
    this.#conns.get(host)?.h2.close();
    this.#conns.set(host, hc);
    h2.start().catch(() => {}).finally(() => {
      if (this.#conns.get(host) === hc) this.#conns.delete(host);
      cluster.tcpClosed(r.connection, this.#closed);
    });
    return hc;
  }

  /** Closes every connection (in-flight calls fail with UNAVAILABLE). */
  close(): void {
    this.#closed = true;
    for (const c of this.#conns.values()) c.h2.close();
    this.#conns.clear();
  }
}

/** One unary call: the stream handler, the deadline and the result. */
class UnaryCall implements H2StreamHandler, TimeoutTarget {
  stream: H2Stream | null = null;
  finished = false;
  readonly done: Promise<Uint8Array | GrpcError>;
  #resolve!: (v: Uint8Array | GrpcError) => void;
  #decoder: GrpcFrameDecoder;
  #message: Uint8Array | null = null;
  #timer = new TimerEntry(this);
  #timers: TimerWheel;

  constructor(opts: GrpcChannelOptions, timeoutMs: number) {
    this.done = new Promise((r) => this.#resolve = r);
    this.#decoder = new GrpcFrameDecoder(opts.maxMessageBytes);
    this.#timers = opts.timers;
    this.#timers.arm(this.#timer, Math.max(1, timeoutMs));
  }

  finish(v: Uint8Array | GrpcError): void {
    if (this.finished) return;
    this.finished = true;
    this.#timers.disarm(this.#timer);
    this.#resolve(v);
  }

  onTimeout(): void {
    if (this.finished) return;
    this.stream?.reset(ErrorCode.CANCEL);
    this.finish(new GrpcError(GrpcStatus.DEADLINE_EXCEEDED, "Deadline exceeded"));
  }

  onHeaders(_st: H2Stream, head: H2Head, endStream: boolean): void {
    if (head.status !== 200) {
      this.finish(new GrpcError(httpToGrpcStatus(head.status), `HTTP status ${head.status}`));
      return;
    }
    // trailers-only response: grpc-status comes in the headers
    if (endStream) this.#end(head.headers);
  }

  onData(_st: H2Stream, data: Uint8Array, _endStream: boolean): void {
    if (this.finished) return;
    try {
      for (const m of this.#decoder.push(data)) this.#message ??= m;
    } catch (err) {
      this.stream?.reset(ErrorCode.CANCEL);
      this.finish(new GrpcError(GrpcStatus.INTERNAL, (err as Error).message));
    }
  }

  onTrailers(_st: H2Stream, trailers: HeaderMap): void {
    this.#end(trailers);
  }

  onReset(_st: H2Stream, code: number): void {
    this.finish(new GrpcError(GrpcStatus.UNAVAILABLE, `Stream reset (HTTP/2 error ${code})`));
  }

  #end(trailers: HeaderMap): void {
    const status = Number(trailers.get("grpc-status") ?? "2");
    if (status !== GrpcStatus.OK) {
      this.finish(new GrpcError(status, decodeGrpcMessage(trailers.get("grpc-message") ?? "")));
    } else if (this.#message === null) {
      this.finish(new GrpcError(GrpcStatus.INTERNAL, "No response message"));
    } else {
      this.finish(this.#message);
    }
  }
}
