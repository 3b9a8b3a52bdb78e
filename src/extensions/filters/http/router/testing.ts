/**
 * Socket-free doubles for the router's unit tests (Envoy's router_test.cc shape): a fake cluster whose pool
 * hands out scripted upstream connections (or failures), a scripted upstream socket, recording filter
 * callbacks, and a FactoryContext on a manual clock.
 */
import { testContext } from "../../../../access_log/test_util.ts";
import type { ManualClock } from "../../../../common/clock.ts";
import { SharedArena } from "../../../../common/shared_arena.ts";
import { StreamInfo } from "../../../../common/stream_info.ts";
import type {
  HttpFilterCallbacks,
  HttpRequest,
  HttpResponse,
  LocalReplyOptions,
} from "../../../../http/filter.ts";
import { H1ClientCodec } from "../../../../http/h1/client.ts";
import { HeaderMap } from "../../../../http/headers.ts";
import { ctx as routeCtx, oneHost, table } from "../../../../http/routing/test_util.ts";
import type { RouteActionEntry, RouteContext, RouteEntry } from "../../../../http/routing/types.ts";
import type { FactoryContext } from "../../../../network/filter.ts";
import type { StatsStore } from "../../../../stats/store.ts";
import {
  CircuitBreakers,
  thresholdsFromConfig,
  type ThresholdsInput,
} from "../../../../upstream/circuit_breaker.ts";
import { createClusterStats, HostImpl } from "../../../../upstream/host.ts";
import type {
  AcquireResult,
  Cluster,
  ClusterManager,
  ClusterStats,
  ConnectFailure,
  Host,
  UpstreamConnection,
} from "../../../../upstream/types.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** A scripted upstream socket: records what is written, answers reads from `push`ed bytes. */
export class FakeSocket {
  /** Everything the router wrote. */
  written = "";
  /** True once closed (by either side). */
  closed = false;
  #queue: Uint8Array[] = [];
  #waiter: { buf: Uint8Array; resolve: (n: number | null) => void } | null = null;

  /** Bytes the upstream sends. */
  push(s: string): void {
    this.#queue.push(enc.encode(s));
    this.#wake();
  }

  /** The upstream closes the connection. */
  end(): void {
    this.closed = true;
    this.#wake();
  }

  read(buf: Uint8Array): Promise<number | null> {
    if (this.#queue.length > 0) return Promise.resolve(this.#take(buf));
    if (this.closed) return Promise.resolve(null);
    return new Promise((resolve) => this.#waiter = { buf, resolve });
  }

  write(data: Uint8Array): Promise<number> {
    if (this.closed) return Promise.reject(new Error("Broken pipe"));
    this.written += dec.decode(data);
    return Promise.resolve(data.length);
  }

  close(): void {
    this.end();
  }

  closeWrite(): Promise<void> {
    return Promise.resolve();
  }

  #take(buf: Uint8Array): number {
    const head = this.#queue[0];
    const n = Math.min(buf.length, head.length);
    buf.set(head.subarray(0, n));
    if (n === head.length) this.#queue.shift();
    else this.#queue[0] = head.subarray(n);
    return n;
  }

  #wake(): void {
    const w = this.#waiter;
    if (w === null) return;
    if (this.#queue.length > 0) {
      this.#waiter = null;
      w.resolve(this.#take(w.buf));
    } else if (this.closed) {
      this.#waiter = null;
      w.resolve(null);
    }
  }
}

/** A connection of the fake pool over a FakeSocket. */
export class FakeConnection implements UpstreamConnection {
  readonly conn: Deno.Conn;
  readonly h1: H1ClientCodec;
  reused = false;
  lastRxMono = 0;
  /** The `release` argument, once released. */
  releasedReusable: boolean | null = null;

  constructor(readonly socket: FakeSocket, readonly host: Host, readonly cluster: FakeCluster) {
    this.conn = socket as unknown as Deno.Conn;
    this.h1 = new H1ClientCodec(this.conn);
  }
  release(reusable: boolean): void {
    this.releasedReusable = reusable;
    if (!reusable) this.socket.close();
  }
}

/** What the fake pool gives on the next acquire: a socket, or a failure. */
export type PoolStep = FakeSocket | { reason: ConnectFailure; detail: string };

/** A cluster with one pool of scripted connections (`script`, in acquire order) and no sockets. */
export class FakeCluster implements Cluster {
  readonly stats: ClusterStats;
  readonly connectTimeoutMs = 1000;
  readonly perConnectionBufferLimitBytes = 1 << 20;
  readonly circuitBreakers: CircuitBreakers;
  readonly hostList: HostImpl[];
  /** The acquires' answers, in order (an empty script fails with connect_failure). */
  readonly script: PoolStep[] = [];
  /** Connections handed out. */
  readonly connections: FakeConnection[] = [];
  /** recordOutcome calls: [host, code]. */
  readonly outcomes: [string, number][] = [];
  #next = 0;

  constructor(
    readonly name: string,
    store: StatsStore,
    opts: { hosts?: number; thresholds?: ThresholdsInput[] } = {},
  ) {
    const scope = store.scope(`cluster.${name}`);
    this.stats = createClusterStats(scope);
    const arena = SharedArena.create({ bytes: 64 * 1024, capacity: 64 });
    this.circuitBreakers = new CircuitBreakers(name, thresholdsFromConfig(opts.thresholds), arena, scope);
    this.hostList = Array.from(
      { length: opts.hosts ?? 1 },
      (_, i) => new HostImpl(`10.0.0.${i + 1}`, 80, {}),
    );
  }

  hosts(): readonly Host[] {
    return this.hostList;
  }
  chooseHost(): Host | null {
    return this.hostList[this.#next++ % this.hostList.length] ?? null;
  }
  takeIdleHttp1(): AcquireResult | null {
    return null;
  }
  acquireHttp1(host: Host): Promise<AcquireResult> {
    const step = this.script.shift() ?? { reason: "connect_failure", detail: "no script" };
    if (!(step instanceof FakeSocket)) {
      this.stats.upstream_cx_connect_fail.inc();
      return Promise.resolve({ ok: false, reason: step.reason, detail: step.detail });
    }
    const c = new FakeConnection(step, host, this);
    this.connections.push(c);
    this.stats.upstream_cx_total.inc();
    return Promise.resolve({ ok: true, connection: c });
  }
  cancelAcquire(): void {}
  connectTcp(): Promise<AcquireResult> {
    return Promise.resolve({ ok: false, reason: "connect_failure", detail: "not in tests" });
  }
  tcpClosed(): void {}
  recordOutcome(host: Host, code: number): void {
    this.outcomes.push([host.addressString, code]);
  }
}

/** A FactoryContext on a ManualClock whose cluster manager knows `clusters`. */
export function routerContext(clock: ManualClock, clusters: Cluster[]): FactoryContext {
  const base = testContext(clock);
  const cm: ClusterManager = {
    get: (name) => clusters.find((c) => c.name === name),
    all: () => clusters,
    initialize: () => Promise.resolve(),
    close: () => {},
  };
  return { ...base, clusterManager: cm };
}

/** The first route of a one-vhost table whose routes are `routes` (Envoy route JSON). */
export function compileRoute(route: Record<string, unknown>): RouteEntry & RouteActionEntry {
  const t = table(oneHost([{ match: { prefix: "/" }, route }]));
  return t.match({ method: "GET", path: "/", authority: "x", scheme: "http", headers: new HeaderMap() }) as
    & RouteEntry
    & RouteActionEntry;
}

/** Filter callbacks that record what the router sends downstream. */
export class RecordingCallbacks implements HttpFilterCallbacks {
  readonly streamInfo: StreamInfo = new StreamInfo();
  readonly request: HttpRequest;
  readonly remoteIp = "10.1.1.1";
  readonly internal = false;
  readonly upgradeType = "";
  readonly activeSpan = null;
  readonly tracing = null;
  routeClusterName: string;
  /** The response head sent downstream. */
  response: HttpResponse | null = null;
  /** The response body sent downstream. */
  body = "";
  /** Trailers sent downstream. */
  trailers: HeaderMap | null = null;
  /** The local reply, when the router answered itself. */
  local: { status: number; body: string; opts: LocalReplyOptions } | null = null;
  /** The response ended (end of stream or a local reply). */
  ended = false;
  /** The stream was reset. */
  reset = false;

  constructor(readonly entry: RouteEntry | null, request: Partial<HttpRequest> = {}, cluster = "web") {
    this.request = {
      method: "GET",
      path: "/",
      authority: "example.com",
      scheme: "http",
      protocol: "HTTP/1.1",
      headers: HeaderMap.from([["host", "example.com"]]),
      contentLength: 0,
      ...request,
    };
    this.routeClusterName = cluster;
  }

  get responseStarted(): boolean {
    return this.response !== null;
  }
  route(): RouteEntry | null {
    return this.entry;
  }
  routeContext(): RouteContext {
    return routeCtx() as unknown as RouteContext;
  }
  clearRouteCache(): void {}
  sendLocalReply(status: number, body: string, opts: LocalReplyOptions = {}): Promise<void> {
    this.local = { status, body, opts };
    this.streamInfo.responseFlags |= opts.flags ?? 0;
    if (opts.details) this.streamInfo.responseCodeDetails = opts.details;
    this.ended = true;
    return Promise.resolve();
  }
  encodeHeaders(res: HttpResponse, endStream: boolean): Promise<void> {
    this.response = res;
    if (endStream) this.ended = true;
    return Promise.resolve();
  }
  encodeData(data: Uint8Array, endStream: boolean): Promise<void> {
    this.body += dec.decode(data);
    if (endStream) this.ended = true;
    return Promise.resolve();
  }
  encodeTrailers(trailers: HeaderMap): Promise<void> {
    this.trailers = trailers;
    this.ended = true;
    return Promise.resolve();
  }
  resetStream(): void {
    this.reset = true;
  }
}

/** Lets pending promise callbacks and the timer wheel's 10 ms tick run (no sockets are involved). */
export async function settle(cond: () => boolean = () => false, ms = 200): Promise<void> {
  for (let i = 0; i < ms && !cond(); i++) await new Promise((r) => setTimeout(r, 1));
}
