/**
 * The control plane's xDS over gRPC, served from an XdsSource: ADS (`StreamAggregatedResources`,
 * `DeltaAggregatedResources`: every type on one stream) and the per-type services of LDS, RDS, CDS, EDS and
 * SDS, state of the world and delta (xds_delta_stream.ts). A per-type stream asking for another type ends with
 * INVALID_ARGUMENT; on ADS a type the control plane does not serve gets an empty set, so the client's initial
 * fetch completes. The node comes from the stream's first request (id "?", cluster "" without one) and is
 * reported to the MeshObserver with every response sent, ACK and NACK.
 *
 * State of the world, per type on the stream: the names (none: every resource of the type), the version and
 * nonce last sent. A request carrying another nonce than the type's last is stale and ignored; the last nonce
 * with error_detail is a NACK, without it an ACK (reported with the request's version_info); either way, when
 * the names did not change the stream waits. A first request, one without a nonce, or new names are answered
 * at once: every resource resolved (responses are complete), version_info the content hash of the sorted
 * `name=version` list, a fresh nonce.
 *
 * Changes: the source tells which node clusters may have changed; within `coalesceMs` they are gathered, then
 * every stream of those nodes resolves its subscribed types in PUSH_ORDER (secrets, clusters, endpoints,
 * listeners, routes: make before break) and sends each whose version changed since the last one sent (after a
 * NACK too: only a new version goes out). A stream's requests and pushes run one after another, so its
 * responses leave in order. Limits: `maxStreams` (more are refused with RESOURCE_EXHAUSTED),
 * `maxPendingBytes` sent and not read per stream (the stream is cut), `maxNamesPerStream`. A malformed request
 * ends its stream with INVALID_ARGUMENT; a source that fails is logged and the stream keeps its state.
 */
import { Logger } from "../common/log.ts";
import { GrpcStatus } from "../grpc/frame.ts";
import type { GrpcServer, GrpcStreamCall } from "../grpc/server.ts";
import type { Gauge, Scope } from "../stats/store.ts";
import { decodeDiscoveryRequest, encodeDiscoveryResponse } from "../xds/codec/discovery.ts";
import { type DiscoveryRequest, TYPE_URLS } from "../xds/types.ts";
import { type MeshObserver, SECRET_TYPE_URL, type XdsSource } from "./types.ts";
import {
  contentVersion,
  DeltaStream,
  report,
  sortedEntries,
  type StreamHost,
  type XdsServerStats,
  XdsStream,
} from "./xds_delta_stream.ts";

export { contentVersion, nodeInfo, type XdsServerStats } from "./xds_delta_stream.ts";

const log = new Logger("control-plane");

const ADS = "/envoy.service.discovery.v3.AggregatedDiscoveryService/";

/** The gRPC methods of each type's own service: [state of the world, delta]. */
export const XDS_TYPE_METHODS: Readonly<Record<string, readonly [string, string]>> = {
  [TYPE_URLS.listener]: methods("listener", "ListenerDiscoveryService", "Listeners"),
  [TYPE_URLS.route]: methods("route", "RouteDiscoveryService", "Routes"),
  [TYPE_URLS.cluster]: methods("cluster", "ClusterDiscoveryService", "Clusters"),
  [TYPE_URLS.endpoint]: methods("endpoint", "EndpointDiscoveryService", "Endpoints"),
  [SECRET_TYPE_URL]: methods("secret", "SecretDiscoveryService", "Secrets"),
};

/** The ADS methods: [state of the world, delta]. */
export const XDS_ADS_METHODS = [`${ADS}StreamAggregatedResources`, `${ADS}DeltaAggregatedResources`] as const;

function methods(pkg: string, svc: string, kind: string): readonly [string, string] {
  const base = `/envoy.service.${pkg}.v3.${svc}/`;
  return [`${base}Stream${kind}`, `${base}Delta${kind}`];
}

/** Options of an XdsServer. */
export interface XdsServerOptions {
  /** Concurrent streams (default 10 000); more are refused with RESOURCE_EXHAUSTED. */
  maxStreams?: number;
  /** Bytes sent to a stream and not yet read by its client beyond which it is cut (default 16 MiB). */
  maxPendingBytes?: number;
  /** Resource names one stream may subscribe to, all types together (default 10 000). */
  maxNamesPerStream?: number;
  /** Changes within this window are pushed together (default 20 ms). */
  coalesceMs?: number;
}

/** gRPC xDS (ADS and per type, state of the world and delta) from an XdsSource; see the file comment. */
export class XdsServer implements StreamHost {
  readonly source: XdsSource;
  readonly mesh: MeshObserver;
  readonly stats: XdsServerStats;
  readonly maxPendingBytes: number;
  readonly maxNamesPerStream: number;
  readonly #active: Gauge;
  readonly #maxStreams: number;
  readonly #coalesceMs: number;
  readonly #streams = new Set<XdsStream>();
  readonly #dirty = new Set<string>();
  readonly #onChange: (clusters: ReadonlySet<string> | null) => void;
  #dirtyAll = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;
  #nonce = 0;
  #ids = 0;

  /** Listens to `source`'s changes at once; call `registerOn` to serve. */
  constructor(source: XdsSource, mesh: MeshObserver, stats: Scope, opts: XdsServerOptions = {}) {
    this.source = source;
    this.mesh = mesh;
    this.#maxStreams = opts.maxStreams ?? 10_000;
    this.maxPendingBytes = opts.maxPendingBytes ?? 16 * 1024 * 1024;
    this.maxNamesPerStream = opts.maxNamesPerStream ?? 10_000;
    this.#coalesceMs = opts.coalesceMs ?? 20;
    this.#active = stats.gauge("streams_active");
    this.stats = {
      streams_total: stats.counter("streams_total"),
      streams_refused: stats.counter("streams_refused"),
      requests: stats.counter("requests"),
      responses: stats.counter("responses"),
      acks: stats.counter("acks"),
      nacks: stats.counter("nacks"),
      stale_nonce: stats.counter("stale_nonce"),
      bad_requests: stats.counter("bad_requests"),
      slow_clients: stats.counter("slow_clients"),
    };
    this.#onChange = (clusters) => {
      if (this.#closed) return;
      if (clusters === null) this.#dirtyAll = true;
      else for (const c of clusters) this.#dirty.add(c);
      this.#timer ??= setTimeout(() => this.#flush(), this.#coalesceMs);
    };
    source.changeListeners.add(this.#onChange);
  }

  /** Registers the ADS and per-type methods (state of the world and delta) on `grpc`. */
  registerOn(grpc: GrpcServer): void {
    const [sotw, delta] = XDS_ADS_METHODS;
    grpc.registerStream(sotw, (c) => this.#open(c, (id) => new SotwStream(this, c, id, undefined)));
    grpc.registerStream(delta, (c) => this.#open(c, (id) => new DeltaStream(this, c, id, undefined)));
    for (const [type, [s, d]] of Object.entries(XDS_TYPE_METHODS)) {
      grpc.registerStream(s, (c) => this.#open(c, (id) => new SotwStream(this, c, id, type)));
      grpc.registerStream(d, (c) => this.#open(c, (id) => new DeltaStream(this, c, id, type)));
    }
  }

  /** Open streams. */
  get streams(): number {
    return this.#streams.size;
  }

  /**
   * Ends every stream with UNAVAILABLE (clients retry elsewhere) and stops listening to the source; resolves
   * once their queued work is done (at most a second). The GrpcServer is its owner's to shut.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.source.changeListeners.delete(this.#onChange);
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const streams = [...this.#streams];
    for (const s of streams) s.end(GrpcStatus.UNAVAILABLE, "control plane shutting down");
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      Promise.all(streams.map((s) => s.idle)),
      new Promise<void>((r) => timer = setTimeout(r, 1000)),
    ]);
    clearTimeout(timer);
  }

  /** See StreamHost. */
  nonce(): string {
    return String(++this.#nonce);
  }

  /** See StreamHost. */
  forget(stream: XdsStream): void {
    if (this.#streams.delete(stream)) this.#active.dec();
  }

  #open(call: GrpcStreamCall, make: (id: string) => XdsStream): void {
    if (this.#closed || this.#streams.size >= this.#maxStreams) {
      this.stats.streams_refused.inc();
      if (this.#closed) return call.end(GrpcStatus.UNAVAILABLE, "control plane shutting down");
      return call.end(GrpcStatus.RESOURCE_EXHAUSTED, `more than ${this.#maxStreams} xDS streams`);
    }
    this.stats.streams_total.inc();
    this.#active.inc();
    this.#streams.add(make(`xds-${++this.#ids}`));
  }

  #flush(): void {
    this.#timer = undefined;
    const all = this.#dirtyAll;
    const dirty = new Set(this.#dirty);
    this.#dirtyAll = false;
    this.#dirty.clear();
    for (const s of this.#streams) {
      if (s.node !== undefined && (all || dirty.has(s.node.cluster))) s.changed();
    }
  }
}

/** The state-of-the-world state of one type on a stream. */
interface SotwType {
  /** Sorted names; null: every resource of the type. */
  names: string[] | null;
  version: string;
  nonce: string;
}

function sameNames(a: readonly string[] | null, b: readonly string[] | null): boolean {
  if (a === null || b === null) return a === b;
  return a.length === b.length && a.every((n, i) => n === b[i]);
}

/** A state-of-the-world stream (StreamAggregatedResources or a per-type Stream* method). */
class SotwStream extends XdsStream<DiscoveryRequest, SotwType> {
  constructor(host: StreamHost, call: GrpcStreamCall, id: string, only: string | undefined) {
    super(host, call, id, only, false);
  }

  protected decode(bytes: Uint8Array): DiscoveryRequest {
    return decodeDiscoveryRequest(bytes);
  }

  protected async handle(type: string, req: DiscoveryRequest): Promise<void> {
    if (this.call.closed) return;
    const st = this.types.get(type);
    const nonce = req.response_nonce ?? "";
    if (st !== undefined && nonce !== "") {
      if (nonce !== st.nonce) {
        this.host.stats.stale_nonce.inc(); // answers a response a newer one superseded
        return;
      }
      this.answered(type, req.version_info ?? "", req.error_detail);
    }
    const given = req.resource_names ?? [];
    const names = given.length === 0 ? null : [...new Set(given)].sort();
    if (st !== undefined && nonce !== "" && sameNames(st.names, names)) return; // wait for a change
    let total = names?.length ?? 0;
    for (const [t, s] of this.types) if (t !== type) total += s.names?.length ?? 0;
    if (total > this.host.maxNamesPerStream) {
      return this.bad(
        GrpcStatus.RESOURCE_EXHAUSTED,
        `more than ${this.host.maxNamesPerStream} resource names`,
      );
    }
    const state = st ?? { names, version: "", nonce: "" };
    state.names = names;
    this.types.set(type, state);
    await this.send(type, state, true);
  }

  /** Resolves `type` and sends it when its version changed (`force`: in any case). */
  async send(type: string, st: SotwType, force: boolean): Promise<void> {
    const current = await this.resolve(type, st.names);
    if (current === undefined || this.call.closed) return;
    const entries = sortedEntries(current);
    const version = contentVersion(entries);
    if (!force && version === st.version) return;
    const nonce = this.host.nonce();
    const bytes = encodeDiscoveryResponse({
      version_info: version,
      type_url: type,
      nonce,
      resources: entries.map(([, e]) => e.any),
    });
    if (!this.write(bytes)) return;
    st.version = version;
    st.nonce = nonce;
    const node = this.node!;
    log.debug(`sent ${type} version ${version} (${entries.length} resources) to node ${node.id}`);
    report(() => this.host.mesh.sent(node, type, version));
  }
}
