/**
 * One long-lived bidirectional gRPC stream to a service on a static cluster (HDS and LRS, which are not xDS
 * subscriptions and so do not go through GrpcMux): opens the stream on a host of the cluster, tells the
 * handler (`opened`, then each `message`), and when the stream fails (connect refused, reset, any
 * grpc-status, the server gone) tells it `ended` and opens a new one after a jittered exponential back-off,
 * until `close`. Runs on the main thread.
 */
import { type Clock, systemClock, type TimerHandle } from "../common/clock.ts";
import { Logger } from "../common/log.ts";
import type { ApiConfigSource } from "../config/config_source.ts";
import { type GrpcStreamCall, openGrpcStream } from "../grpc/stream_client.ts";
import { JitteredBackoff } from "./backoff.ts";
import { errorText } from "./subscription.ts";
import type { ClusterAddress, RandomSource, ResolveCluster } from "./types.ts";

const log = new Logger("upstream");

/** What a ServiceStream tells its user. */
export interface ServiceStreamHandler {
  /** A new stream is up: send the first message. */
  opened(): void;
  /** One message arrived (may return a promise: the next message waits for it). */
  message(msg: Uint8Array): void | Promise<void>;
  /** The stream ended (`reason`); a new one follows after the back-off unless closed. */
  ended(reason: string): void;
}

/** Dependencies shared by the HDS and LRS clients. */
export interface ServiceStreamDeps {
  /** Resolves the static cluster to an address (the cluster manager). */
  resolveCluster: ResolveCluster;
  /** Time source (default: the system clock). */
  clock?: Clock;
  /** Jitter source (default Math.random). */
  random?: RandomSource;
  /** Back-off bounds (each client has its own default). */
  backoff?: { baseMs: number; maxMs: number };
  /** Opens the byte connection (default: TCP, or TLS with ALPN h2 when the cluster has TLS). */
  connect?: (clusterName: string, address: ClusterAddress) => Promise<Deno.Conn>;
}

/** Options of a ServiceStream. */
export interface ServiceStreamOptions {
  /** The method, "/package.Service/Method". */
  path: string;
  /** Names the stream in logs ("HDS"). */
  label: string;
  /** Back-off bounds unless `deps.backoff` says otherwise. */
  backoff: { baseMs: number; maxMs: number };
  deps: ServiceStreamDeps;
  handler: ServiceStreamHandler;
}

/** The cluster and :authority of an ApiConfigSource's first envoy_grpc service. */
export function grpcTarget(source: ApiConfigSource): { clusterName: string; authority: string } {
  const g = source.grpc_services[0]?.envoy_grpc;
  if (!g) throw new Error("The config source needs grpc_services[0].envoy_grpc");
  return { clusterName: g.cluster_name, authority: g.authority ?? g.cluster_name };
}

/** See the file comment. */
export class ServiceStream {
  readonly #source: { clusterName: string; authority: string };
  readonly #path: string;
  readonly #label: string;
  readonly #deps: ServiceStreamDeps;
  readonly #handler: ServiceStreamHandler;
  readonly #clock: Clock;
  readonly #backoff: JitteredBackoff;
  #call: GrpcStreamCall | undefined;
  #run: Promise<void> | undefined;
  #closed = false;
  #sleepTimer: TimerHandle | undefined;
  #wake: (() => void) | undefined;
  /** Streams opened so far. */
  opened = 0;

  /** A stream of `opts.path` ("/package.Service/Method") to the cluster `source` names; `start` opens it. */
  constructor(source: ApiConfigSource, opts: ServiceStreamOptions) {
    const { deps, handler } = opts;
    this.#source = grpcTarget(source);
    this.#path = opts.path;
    this.#label = opts.label;
    this.#deps = deps;
    this.#handler = handler;
    this.#clock = deps.clock ?? systemClock;
    const b = deps.backoff ?? opts.backoff;
    this.#backoff = new JitteredBackoff(b.baseMs, b.maxMs, deps.random ?? Math.random);
  }

  /** True while a stream is open. */
  get connected(): boolean {
    return this.#call !== undefined;
  }

  /** Opens the first stream. */
  start(): void {
    if (this.#closed || this.#run) return;
    this.#run = this.#loop();
  }

  /** Sends one message on the current stream; false when there is none. */
  send(msg: Uint8Array): boolean {
    return this.#call?.write(msg) ?? false;
  }

  /** Closes the stream and stops reconnecting; resolves when nothing is left running. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#sleepTimer !== undefined) this.#clock.clearTimer(this.#sleepTimer);
    this.#sleepTimer = undefined;
    this.#wake?.();
    await this.#call?.close();
    await this.#run;
  }

  async #loop(): Promise<void> {
    while (!this.#closed) {
      const reason = await this.#session();
      if (this.#closed) break;
      log.warn(`${this.#label} stream to ${this.#source.clusterName} failed: ${reason}`);
      this.#handler.ended(reason);
      const delay = this.#backoff.next();
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        this.#sleepTimer = this.#clock.setTimer(() => {
          this.#sleepTimer = undefined;
          resolve();
        }, delay);
      });
      this.#wake = undefined;
    }
  }

  async #session(): Promise<string> {
    const name = this.#source.clusterName;
    const addr = this.#deps.resolveCluster(name);
    if (!addr) return `cluster "${name}" has no usable host`;
    let call: GrpcStreamCall;
    try {
      const connect = this.#deps.connect;
      call = await openGrpcStream(
        {
          host: addr.host,
          port: addr.port,
          tls: addr.tls,
          authority: this.#source.authority,
          connect: connect ? () => connect(name, addr) : undefined,
        },
        this.#path,
      );
    } catch (e) {
      return errorText(e);
    }
    if (this.#closed) {
      await call.close();
      return "closed";
    }
    this.opened++;
    this.#call = call;
    try {
      this.#handler.opened();
      for (;;) {
        const msg = await call.read();
        if (msg === null) return "the server closed the stream";
        this.#backoff.reset();
        await this.#handler.message(msg);
        if (this.#closed) return "closed";
      }
    } catch (e) {
      return errorText(e);
    } finally {
      this.#call = undefined;
      await call.close();
    }
  }
}
