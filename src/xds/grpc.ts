/**
 * xDS over gRPC streams, as Envoy's GrpcMux: one bidirectional stream to a management cluster carries the
 * requests of its subscriptions (one for a per-type `api_config_source` GRPC, every `ads: {}` subscription for
 * ADS) and responses are dispatched by type_url. Requests are built from each subscription's state when they
 * leave (so a queued ACK is never stale), in Envoy's order on a new stream (CDS, EDS, LDS, RDS, SDS), paced by
 * `rate_limit_settings`; a new stream resends each subscription's last accepted version and names without a
 * nonce. A failed stream (connect refused, reset, any grpc-status, the server gone) is reported to every
 * subscription and retried with jittered exponential back-off; the last good config stays.
 * State of the world (GRPC) and incremental (DELTA_GRPC, see delta.ts) share the mux; either way a type may have
 * several watches on one stream (one per RDS route config or SDS secret over ADS), kept together in the type's
 * SotwGroup or DeltaGroup, which sends the union of their names and splits responses between them.
 */
import { type Clock, systemClock, type TimerHandle } from "../common/clock.ts";
import { Logger } from "../common/log.ts";
import type { ApiConfigSource } from "../config/config_source.ts";
import { openGrpcStream } from "../grpc/stream_client.ts";
import type { GrpcStreamCall } from "../grpc/stream_client.ts";
import type { Gauge, Scope } from "../stats/store.ts";
import { JitteredBackoff, XDS_BACKOFF } from "./backoff.ts";
import type { GrpcTransportFactory } from "./client.ts";
import {
  decodeAny,
  decodeDeltaDiscoveryResponse,
  decodeDiscoveryResponse,
  encodeDiscoveryRequest,
  type RawDeltaDiscoveryResponse,
  type RawDiscoveryResponse,
} from "./codec/mod.ts";
import { DeltaGroup, DeltaSubscription } from "./delta.ts";
import { DEFAULT_MAX_RESPONSE_BYTES, errorText, NACK_CODE, type Subscription } from "./subscription.ts";
import {
  type ClusterAddress,
  type DiscoveryRequest,
  type ErrorDetail,
  type RandomSource,
  type ResolveCluster,
  RESOURCE_WRAPPER_TYPE,
  TYPE_URLS,
  type XdsNode,
  type XdsTransport,
} from "./types.ts";

const log = new Logger("config");

/** gRPC method paths per type: [state of the world, delta]. */
export const XDS_METHODS: Record<string, readonly [string, string]> = {
  [TYPE_URLS.listener]: method("listener", "ListenerDiscoveryService", "Listeners"),
  [TYPE_URLS.route]: method("route", "RouteDiscoveryService", "Routes"),
  [TYPE_URLS.cluster]: method("cluster", "ClusterDiscoveryService", "Clusters"),
  [TYPE_URLS.endpoint]: method("endpoint", "EndpointDiscoveryService", "Endpoints"),
  [TYPE_URLS.secret]: method("secret", "SecretDiscoveryService", "Secrets"),
};

/** The ADS methods: [state of the world, delta]. */
export const ADS_METHODS = [
  "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources",
  "/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources",
] as const;

function method(pkg: string, svc: string, kind: string): readonly [string, string] {
  const base = `/envoy.service.${pkg}.v3.${svc}/`;
  return [`${base}Stream${kind}`, `${base}Delta${kind}`];
}

/** Envoy's ADS order on a new stream: clusters, endpoints, listeners, routes, then secrets. */
const TYPE_ORDER = [
  TYPE_URLS.cluster,
  TYPE_URLS.endpoint,
  TYPE_URLS.listener,
  TYPE_URLS.route,
  TYPE_URLS.secret,
];

function typeRank(typeUrl: string): number {
  const i = TYPE_ORDER.indexOf(typeUrl as typeof TYPE_ORDER[number]);
  return i < 0 ? TYPE_ORDER.length : i;
}

/** One subscription as a mux sees it (state of the world or delta). */
export interface MuxWatcher {
  readonly typeUrl: string;
  /** Arms the initial fetch timeout. */
  start(): void;
  /** The encoded request to send now; `fresh` for the first request of a new stream. */
  request(node: XdsNode | undefined, fresh: boolean): Uint8Array;
  /** Handles one response for this type; resolves once its ACK/NACK is decided. Never rejects. */
  handle(response: RawDiscoveryResponse | RawDeltaDiscoveryResponse): Promise<void>;
  /** The stream failed. */
  failure(reason: string): void;
  /** Stops for good. */
  close(): void;
}

/**
 * The state-of-the-world Subscriptions of one type on a stream (Envoy's per-type watches): one request with the
 * union of their names and the type's version and nonce; each response is decoded once and handed to every
 * wildcard subscription and to each named one whose names it carries (all of them when it carries nothing), and
 * is NACKed when any of them rejects it.
 */
export class SotwGroup implements MuxWatcher {
  readonly subs = new Set<Subscription>();
  #version = "";
  #nonce = "";
  #error: ErrorDetail | undefined;
  /** A response arrived on the current stream (its nonce may be echoed). */
  #answered = false;

  constructor(readonly typeUrl: string) {}

  /** Adds a subscription (its initial fetch timeout starts). */
  add(sub: Subscription): void {
    this.subs.add(sub);
    sub.start();
  }
  start(): void {}

  /** The DiscoveryRequest to send now (JSON form). */
  requestJson(node: XdsNode | undefined, fresh: boolean): DiscoveryRequest {
    if (fresh) this.#answered = false;
    const names = new Set<string>();
    for (const s of this.subs) for (const n of s.names) names.add(n);
    const r: DiscoveryRequest = { type_url: this.typeUrl };
    if (this.#version) r.version_info = this.#version;
    if (node) r.node = node;
    if (names.size) r.resource_names = [...names].sort();
    // nothing received on this stream yet: no nonce or error (Envoy clears them per stream; a server ignores a
    // request carrying another stream's nonce)
    if (this.#answered && this.#nonce) r.response_nonce = this.#nonce;
    if (this.#answered && this.#error) r.error_detail = { ...this.#error };
    return r;
  }

  request(node: XdsNode | undefined, fresh: boolean): Uint8Array {
    return encodeDiscoveryRequest(this.requestJson(node, fresh));
  }

  /** A response that could not be decoded at all: every subscription counts the rejection. */
  async reject(message: string, nonce?: string): Promise<void> {
    if (nonce !== undefined) this.#nonce = nonce;
    this.#answered = true;
    this.#error = { code: NACK_CODE, message };
    await Promise.all([...this.subs].map((s) => s.handleDecodeError(message, nonce)));
  }

  async handle(raw: RawDiscoveryResponse | RawDeltaDiscoveryResponse): Promise<void> {
    const res = raw as RawDiscoveryResponse;
    const resources: unknown[] = [];
    /** Each named subscription gets only its own resources (not all of them: 1,000 EDS watches would be O(n²)). */
    const byName = new Map<string, unknown[]>();
    const names = {
      add(n: string, json: unknown) {
        const list = byName.get(n);
        if (list) list.push(json);
        else byName.set(n, [json]);
      },
    };
    for (let i = 0; i < res.resources.length; i++) {
      const a = res.resources[i];
      try {
        const json = decodeAny(a.type_url, a.value);
        resources.push(json);
        const inner = json["@type"] === RESOURCE_WRAPPER_TYPE && isObject(json.resource)
          ? json.resource
          : json;
        const n = this.typeUrl === TYPE_URLS.endpoint ? inner.cluster_name : inner.name;
        if (typeof n === "string") names.add(n, json);
        if (inner !== json && typeof json.name === "string" && json.name !== n) names.add(json.name, json);
      } catch (e) {
        return this.reject(`resources[${i}]: ${errorText(e)}`, res.nonce);
      }
    }
    this.#answered = true;
    this.#nonce = res.nonce;
    const body = { version_info: res.version_info, resources, type_url: res.type_url, nonce: res.nonce };
    const targets = [...this.subs].filter((s) =>
      s.wildcard || resources.length === 0 || s.names.some((n) => byName.has(n))
    );
    await Promise.all(targets.map((s) => {
      if (s.wildcard || resources.length === 0) return s.handleResponse(body);
      const own = s.names.flatMap((n) => byName.get(n) ?? []);
      return s.handleResponse({ ...body, resources: own });
    }));
    const errors = targets.map((s) => s.request().error_detail?.message).filter((m) => m !== undefined);
    if (errors.length) this.#error = { code: NACK_CODE, message: errors.join("; ") };
    else {
      this.#version = res.version_info;
      this.#error = undefined;
    }
  }

  failure(reason: string): void {
    for (const s of this.subs) s.handleTransportFailure(reason);
  }

  close(): void {
    for (const s of this.subs) s.close();
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Dependencies of the gRPC transports. */
export interface GrpcXdsDeps {
  /** The node sent on each stream's first request (or every request). */
  node: XdsNode;
  /** Resolves a management cluster to an address (the cluster manager). */
  resolveCluster: ResolveCluster;
  /** The root stats scope (`control_plane.` is added). */
  stats: Scope;
  /** dynamic_resources.ads_config (needed for `ads: {}` sources). */
  adsConfig?: ApiConfigSource;
  /** Time source (default: the system clock). */
  clock?: Clock;
  /** Jitter source (default Math.random). */
  random?: RandomSource;
  /** Back-off bounds (default 500 ms .. 30 s). */
  backoff?: { baseMs: number; maxMs: number };
  /** Opens the byte connection to a management server (default: TCP, or TLS with ALPN h2 when `tls`). */
  connect?: (clusterName: string, address: ClusterAddress) => Promise<Deno.Conn>;
  /** Largest DiscoveryResponse accepted (default 64 MiB); a larger one fails the stream. */
  maxMessageBytes?: number;
}

/** Options of one mux (one gRPC stream at a time). */
export interface GrpcMuxOptions {
  /** The management cluster (envoy_grpc.cluster_name). */
  clusterName: string;
  /** :authority (envoy_grpc.authority; default the cluster name, as Envoy). */
  authority?: string;
  /** The gRPC method path. */
  path: string;
  /** Delta (DeltaDiscoveryResponse) or state of the world. */
  delta: boolean;
  /** set_node_on_first_message_only. */
  nodeOnFirstMessageOnly: boolean;
  /** rate_limit_settings: a token bucket on outgoing requests. */
  rateLimit?: { max_tokens: number; fill_rate: number };
  /** Label for logs ("ADS" or the type). */
  label: string;
}

/** One stream to a management server shared by its watchers; see the file comment. */
export class GrpcMux {
  readonly #o: GrpcMuxOptions;
  readonly #deps: GrpcXdsDeps;
  readonly #clock: Clock;
  readonly #backoff: JitteredBackoff;
  readonly #connected: Gauge;
  readonly #pendingGauge: Gauge;
  readonly #watchers = new Map<string, MuxWatcher>();
  /** Watchers with a request due, in send order. */
  #queue = new Set<MuxWatcher>();
  #call: GrpcStreamCall | undefined;
  #firstSent = false;
  #run: Promise<void> | undefined;
  #closed = false;
  #sleepTimer: TimerHandle | undefined;
  #wakeSleep: (() => void) | undefined;
  #drainTimer: TimerHandle | undefined;
  #tokens = 0;
  #tokensAt = 0;
  /** Streams opened so far (tests). */
  streamsOpened = 0;

  /** Makes the mux; the stream opens when the first watcher is added. */
  constructor(opts: GrpcMuxOptions, deps: GrpcXdsDeps) {
    this.#o = opts;
    this.#deps = deps;
    this.#clock = deps.clock ?? systemClock;
    const b = deps.backoff ?? XDS_BACKOFF;
    this.#backoff = new JitteredBackoff(b.baseMs, b.maxMs, deps.random ?? Math.random);
    const cp = deps.stats.scope("control_plane");
    this.#connected = cp.gauge("connected_state", "never_import");
    this.#pendingGauge = cp.gauge("pending_requests");
    if (opts.rateLimit) {
      this.#tokens = opts.rateLimit.max_tokens;
      this.#tokensAt = this.#clock.monotonic();
    }
  }

  /** True once closed (its last watcher left, or `close()`). */
  get isClosed(): boolean {
    return this.#closed;
  }

  /** True while a stream is open. */
  get connected(): boolean {
    return this.#call !== undefined;
  }

  /** The watcher of `typeUrl`, if any. */
  watcher(typeUrl: string): MuxWatcher | undefined {
    return this.#watchers.get(typeUrl);
  }

  /** Adds a watcher (one per type_url: a type's group) and sends its request (the stream opens on the first). */
  add(w: MuxWatcher): void {
    if (this.#closed) return;
    if (this.#watchers.has(w.typeUrl)) throw new Error(`${this.#o.label}: ${w.typeUrl} is already watched`);
    this.#watchers.set(w.typeUrl, w);
    w.start();
    if (this.#run === undefined) this.#run = this.#loop();
    else if (this.#call) this.requestNow(w);
  }

  /** Queues a request for `w` (names changed, or an ACK/NACK). */
  requestNow(w: MuxWatcher): void {
    if (this.#closed || this.#watchers.get(w.typeUrl) !== w) return;
    if (!this.#queue.has(w)) {
      this.#queue.add(w);
      this.#pendingGauge.inc();
    }
    this.#drain();
  }

  /** Removes a watcher; the mux closes when none is left. */
  async remove(w: MuxWatcher): Promise<void> {
    if (this.#watchers.get(w.typeUrl) !== w) return;
    this.#watchers.delete(w.typeUrl);
    this.#dequeue(w);
    w.close();
    if (this.#watchers.size === 0) await this.close();
  }

  /** Closes the stream and stops reconnecting; resolves when nothing is left running. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const w of this.#watchers.values()) w.close();
    this.#watchers.clear();
    for (const w of [...this.#queue]) this.#dequeue(w);
    if (this.#drainTimer !== undefined) this.#clock.clearTimer(this.#drainTimer);
    this.#drainTimer = undefined;
    if (this.#sleepTimer !== undefined) this.#clock.clearTimer(this.#sleepTimer);
    this.#sleepTimer = undefined;
    this.#wakeSleep?.();
    const call = this.#call;
    if (call) await call.close();
    await this.#run;
  }

  #dequeue(w: MuxWatcher): void {
    if (this.#queue.delete(w)) this.#pendingGauge.dec();
  }

  async #loop(): Promise<void> {
    while (!this.#closed) {
      const reason = await this.#session();
      if (this.#closed) break;
      this.#connected.set(0);
      log.warn(`${this.#o.label}: xDS stream to ${this.#o.clusterName} failed: ${reason}`);
      for (const w of this.#watchers.values()) w.failure(reason);
      const delay = this.#backoff.next();
      await new Promise<void>((resolve) => {
        this.#wakeSleep = resolve;
        this.#sleepTimer = this.#clock.setTimer(() => {
          this.#sleepTimer = undefined;
          resolve();
        }, delay);
      });
      this.#wakeSleep = undefined;
    }
  }

  /** One stream: open, send every watcher's request in order, dispatch responses; resolves with why it ended. */
  async #session(): Promise<string> {
    const addr = this.#deps.resolveCluster(this.#o.clusterName);
    if (!addr) return `cluster "${this.#o.clusterName}" has no usable host`;
    let call: GrpcStreamCall;
    try {
      const connect = this.#deps.connect;
      call = await openGrpcStream(
        {
          host: addr.host,
          port: addr.port,
          tls: addr.tls,
          authority: this.#o.authority ?? this.#o.clusterName,
          connect: connect ? () => connect(this.#o.clusterName, addr) : undefined,
        },
        this.#o.path,
        { maxMessageBytes: this.#deps.maxMessageBytes ?? DEFAULT_MAX_RESPONSE_BYTES },
      );
    } catch (e) {
      return errorText(e);
    }
    if (this.#closed) {
      await call.close();
      return "closed";
    }
    this.streamsOpened++;
    this.#call = call;
    this.#firstSent = false;
    this.#connected.set(1);
    for (const w of [...this.#queue]) this.#dequeue(w);
    const ordered = [...this.#watchers.values()].sort((a, b) => typeRank(a.typeUrl) - typeRank(b.typeUrl));
    for (const w of ordered) {
      this.#queue.add(w);
      this.#pendingGauge.inc();
    }
    this.#fresh = new Set(ordered);
    this.#drain();
    try {
      for (;;) {
        const msg = await call.read();
        if (msg === null) return "the server closed the stream";
        this.#backoff.reset();
        await this.#dispatch(msg);
        releaseMessage(msg);
        if (this.#closed) return "closed";
      }
    } catch (e) {
      return errorText(e);
    } finally {
      this.#call = undefined;
      await call.close();
    }
  }

  /** Watchers whose next request is the first on the current stream. */
  #fresh = new Set<MuxWatcher>();

  async #dispatch(msg: Uint8Array): Promise<void> {
    let res: RawDiscoveryResponse | RawDeltaDiscoveryResponse;
    try {
      res = this.#o.delta ? decodeDeltaDiscoveryResponse(msg) : decodeDiscoveryResponse(msg);
    } catch (e) {
      // nothing tells which subscription it was for: a single-type stream NACKs, ADS drops it
      log.warn(`${this.#o.label}: ${errorText(e)}`);
      if (this.#watchers.size === 1 && !this.#o.delta) {
        const [w] = this.#watchers.values();
        if (w instanceof SotwGroup) {
          await w.reject(errorText(e));
          this.requestNow(w);
        }
      }
      return;
    }
    let w = this.#watchers.get(res.type_url);
    if (!w && res.type_url === "" && this.#watchers.size === 1) [w] = this.#watchers.values();
    if (!w) {
      log.warn(`${this.#o.label}: ignoring a response for unwatched type ${JSON.stringify(res.type_url)}`);
      return;
    }
    await w.handle(res);
    this.requestNow(w);
  }

  /** Sends queued requests while a stream is up and the token bucket allows. */
  #drain(): void {
    const call = this.#call;
    if (!call || this.#drainTimer !== undefined) return;
    for (const w of this.#queue) {
      if (!this.#takeToken()) {
        const rate = this.#o.rateLimit!.fill_rate;
        this.#drainTimer = this.#clock.setTimer(() => {
          this.#drainTimer = undefined;
          this.#drain();
        }, Math.max(1, Math.ceil(1000 / rate)));
        return;
      }
      this.#dequeue(w);
      const node = !this.#o.nodeOnFirstMessageOnly || !this.#firstSent ? this.#deps.node : undefined;
      let bytes: Uint8Array;
      try {
        bytes = w.request(node, this.#fresh.delete(w));
      } catch (e) {
        log.error(`${this.#o.label}: cannot encode the ${w.typeUrl} request: ${errorText(e)}`);
        continue;
      }
      this.#firstSent = true;
      call.write(bytes);
    }
  }

  #takeToken(): boolean {
    const rl = this.#o.rateLimit;
    if (!rl) return true;
    const now = this.#clock.monotonic();
    this.#tokens = Math.min(rl.max_tokens, this.#tokens + ((now - this.#tokensAt) / 1000) * rl.fill_rate);
    this.#tokensAt = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}

/**
 * Frees a handled response's bytes now instead of at the next full collection. Each message read from a
 * GrpcStreamCall owns its ArrayBuffer and nothing decoded from it keeps a view (resources become JSON, bytes
 * fields base64), so once `#dispatch` has returned it is dead. Left to the collector, the buffer of a response
 * whose handling spans several scavenges (a 1,000-cluster CDS state of the world) is promoted with its wrapper
 * and only freed by a full collection: during an update burst ~15 MB of them piled up in malloc's main arena
 * between full collections, and the holes they left kept RSS ~20 MB higher after 3,000 versions while the JS
 * heap and external memory stayed flat.
 */
function releaseMessage(msg: Uint8Array): void {
  const buf = msg.buffer;
  if (!(buf instanceof ArrayBuffer) || buf.detached) return;
  if (msg.byteOffset !== 0 || msg.byteLength !== buf.byteLength) return; // not the message's own buffer
  buf.transfer(0); // detaches: the backing store is freed at once
}

/** A subscription's handle onto a mux (its own, or the shared ADS one). */
class MuxHandle implements XdsTransport {
  #started = false;
  #closed = false;
  #group: SotwGroup | DeltaGroup | undefined;
  constructor(
    readonly mux: GrpcMux,
    readonly sub: Subscription,
    readonly delta: DeltaSubscription | undefined,
    readonly ownsMux: boolean,
  ) {}
  start(): void {
    if (this.#started || this.#closed) return;
    this.#started = true;
    const existing = this.mux.watcher(this.sub.typeUrl);
    if (this.delta) {
      if (existing !== undefined && !(existing instanceof DeltaGroup)) {
        throw new Error(`${this.sub.typeUrl} is already watched on this stream`);
      }
      const g = this.#group = existing ?? new DeltaGroup(this.sub.typeUrl);
      g.add(this.delta);
      if (existing) this.mux.requestNow(existing);
      else this.mux.add(g);
      return;
    }
    if (existing !== undefined && !(existing instanceof SotwGroup)) {
      throw new Error(`${this.sub.typeUrl} is already watched on this stream`);
    }
    const g = this.#group = existing ?? new SotwGroup(this.sub.typeUrl);
    g.add(this.sub);
    if (existing) this.mux.requestNow(existing);
    else this.mux.add(g);
  }
  requestNow(): void {
    if (this.#group) this.mux.requestNow(this.#group);
  }
  async close(): Promise<void> {
    this.#closed = true;
    const g = this.#group;
    this.sub.close();
    if (g instanceof DeltaGroup) {
      g.delete(this.delta!);
      if (g.subs.size === 0) await this.mux.remove(g);
      else this.mux.requestNow(g); // the names left are unsubscribed
    } else if (g) {
      g.subs.delete(this.sub);
      if (g.subs.size === 0) await this.mux.remove(g);
      else this.mux.requestNow(g); // the names left
    } else this.delta?.close();
    if (this.ownsMux) await this.mux.close();
  }
}

function muxOptions(api: ApiConfigSource, path: string, label: string): GrpcMuxOptions {
  const g = api.grpc_services[0]?.envoy_grpc;
  if (!g) throw new Error(`${label}: ${api.api_type} needs grpc_services[0].envoy_grpc`);
  return {
    clusterName: g.cluster_name,
    authority: g.authority,
    path,
    delta: api.api_type === "DELTA_GRPC",
    nodeOnFirstMessageOnly: api.set_node_on_first_message_only,
    rateLimit: api.rate_limit_settings,
    label,
  };
}

/**
 * The `grpcTransport` of an XdsClient: per-type streams for `api_config_source` GRPC/DELTA_GRPC and one shared
 * ADS stream (made on first use, closed when its last subscription closes) for `ads: {}`.
 */
export function grpcTransportFactory(deps: GrpcXdsDeps): GrpcTransportFactory {
  let ads: GrpcMux | undefined;
  return (sub, source) => {
    const api = "ads" in source && source.ads === true ? deps.adsConfig : source as ApiConfigSource;
    if (!api) throw new Error("ads needs dynamic_resources.ads_config");
    const delta = api.api_type === "DELTA_GRPC";
    const watcher = delta ? new DeltaSubscription(sub) : undefined;
    if ("ads" in source && source.ads === true) {
      if (!ads || ads.isClosed) ads = new GrpcMux(muxOptions(api, ADS_METHODS[delta ? 1 : 0], "ADS"), deps);
      return new MuxHandle(ads, sub, watcher, false);
    }
    const methods = XDS_METHODS[sub.typeUrl];
    if (!methods) throw new Error(`No gRPC discovery service for ${sub.typeUrl}`);
    const o = muxOptions(api, methods[delta ? 1 : 0], sub.typeUrl.split(".").pop() ?? sub.typeUrl);
    return new MuxHandle(new GrpcMux(o, deps), sub, watcher, true);
  };
}
