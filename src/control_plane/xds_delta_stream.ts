/**
 * The stream side of the control plane's gRPC xDS server (xds_server.ts): `XdsStream`, what state-of-the-world
 * and incremental streams share (the node and its mesh reports, per-stream serialization, the type check of
 * per-type services, resolving through the XdsSource, the slow-client cut), and `DeltaStream`, the incremental
 * protocol (DeltaAggregatedResources and the per-type Delta* methods).
 *
 * Delta, per type on the stream: a wildcard flag (`*` subscribed, or a first request naming nothing for LDS
 * and CDS, Envoy's legacy wildcard), the names subscribed, and the version the client holds of each resource
 * (what was sent, or `initial_resource_versions` of the type's first request). A response carries only the
 * resources whose version differs from the client's, and `removed_resources` for names the client holds that
 * are gone (a wildcard set no longer has them; a subscribed name no longer resolves). Subscribing a name again
 * resends it; unsubscribing forgets it. The first request of a type is always answered (empty if the client
 * holds everything) so the client's initial fetch completes. Delta requests carry no version: an ACK or NACK
 * is reported with the system_version_info of the response its nonce names; a nonce never sent is counted
 * (`stale_nonce`) but its subscription changes still apply. After a NACK the client's versions are taken as
 * sent, so only a later change is sent again.
 */
import { Logger } from "../common/log.ts";
import { xxhash64Hex } from "../common/xxhash64.ts";
import { GrpcStatus } from "../grpc/frame.ts";
import type { GrpcStreamCall } from "../grpc/stream_call.ts";
import type { Counter } from "../stats/store.ts";
import {
  decodeDeltaDiscoveryRequest,
  type DeltaDiscoveryRequest,
  encodeDeltaDiscoveryResponse,
  type RawAny,
} from "../xds/codec/discovery.ts";
import { isWildcardType, type XdsNode } from "../xds/types.ts";
import { type MeshObserver, type NodeInfo, PUSH_ORDER, type ResourceEntry, type XdsSource } from "./types.ts";

const log = new Logger("control-plane");

/** The counters the streams and the server keep (`streams_active` is a gauge of the server). */
export type XdsServerStats = Record<
  | "streams_total"
  | "streams_refused"
  | "requests"
  | "responses"
  | "acks"
  | "nacks"
  | "stale_nonce"
  | "bad_requests"
  | "slow_clients",
  Counter
>;

/** What a stream needs of its server. */
export interface StreamHost {
  readonly source: XdsSource;
  readonly mesh: MeshObserver;
  readonly stats: XdsServerStats;
  readonly maxPendingBytes: number;
  readonly maxNamesPerStream: number;
  /** A fresh nonce. */
  nonce(): string;
  /** The stream ended: forget it. */
  forget(stream: XdsStream): void;
}

/** The transports MeshObserver.connected names. */
export type XdsTransportKind = "ads" | "delta-ads" | "grpc" | "delta-grpc";

const SERVED = new Set(PUSH_ORDER);

/** The NodeInfo of a request's node (id "?" and cluster "" when it does not say). */
export function nodeInfo(n: XdsNode | undefined): NodeInfo {
  const info: NodeInfo = { id: n?.id || "?", cluster: n?.cluster ?? "" };
  if (n?.user_agent_name) {
    info.userAgent = n.user_agent_version
      ? `${n.user_agent_name}/${n.user_agent_version}`
      : n.user_agent_name;
  }
  if (n?.locality?.zone) info.zone = n.locality.zone;
  return info;
}

/** Entries sorted by name. */
export function sortedEntries(m: ReadonlyMap<string, ResourceEntry>): [string, ResourceEntry][] {
  return [...m].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0);
}

/** The content version of a set of resources: xxHash64 of the sorted `name=version` lines, 16 hex digits. */
export function contentVersion(sorted: readonly [string, ResourceEntry][]): string {
  return xxhash64Hex(sorted.map(([n, e]) => `${n}=${e.version}`).join("\n"));
}

/** Calls a MeshObserver method; an observer that throws is logged, never breaks a stream. */
export function report(fn: () => void): void {
  try {
    fn();
  } catch (e) {
    log.warn(`mesh observer failed: ${(e as Error).message}`);
  }
}

/** What state-of-the-world and delta streams share; see the file comment. */
export abstract class XdsStream<
  Req extends { type_url?: string; node?: XdsNode } = { type_url?: string; node?: XdsNode },
  St = unknown,
> {
  /** Identifies the stream to the MeshObserver. */
  readonly id: string;
  /** The node, from the first request (undefined before). */
  node: NodeInfo | undefined;
  protected readonly host: StreamHost;
  protected readonly call: GrpcStreamCall;
  /** The type of a per-type service; undefined on ADS. */
  protected readonly only: string | undefined;
  readonly #transport: XdsTransportKind;
  /** The stream's async work (requests and pushes), one after another so responses go out in order. */
  #chain: Promise<void> = Promise.resolve();
  #pushQueued = false;
  /** The first request had no node: a later one that has it replaces "?". */
  #nodeDefaulted = false;

  constructor(host: StreamHost, call: GrpcStreamCall, id: string, only: string | undefined, delta: boolean) {
    this.host = host;
    this.call = call;
    this.id = id;
    this.only = only;
    this.#transport = only === undefined ? (delta ? "delta-ads" : "ads") : (delta ? "delta-grpc" : "grpc");
    call.onMessage = (m) => {
      host.stats.requests.inc();
      try {
        this.request(m);
      } catch (e) {
        log.error(`xDS stream ${id}: ${(e as Error).message}`);
        call.end(GrpcStatus.INTERNAL, "internal error");
      }
    };
    call.onHalfClose = () => call.end();
    call.onClose = () => {
      const node = this.node;
      if (node) report(() => host.mesh.disconnected(node, id));
      host.forget(this);
    };
  }

  /** Resources of the node may have changed: resolve every subscribed type again, send what changed. */
  changed(): void {
    if (this.#pushQueued || this.call.closed || this.node === undefined) return;
    this.#pushQueued = true;
    this.run(() => {
      this.#pushQueued = false;
      return this.push();
    });
  }

  /** Ends the stream (server close). */
  end(code: number, message: string): void {
    this.call.end(code, message);
  }

  /** Resolves once the work queued so far is done. */
  get idle(): Promise<void> {
    return this.#chain;
  }

  /** The per-type state of the stream (SotW or delta). */
  protected readonly types = new Map<string, St>();

  /** Decodes one request message; throws on malformed bytes. */
  protected abstract decode(bytes: Uint8Array): Req;

  /** Handles a decoded request of `type` (queued: one at a time, in order). */
  protected abstract handle(type: string, req: Req): Promise<void>;

  /** Resolves `type` and sends it when its version changed (`force`: in any case). */
  protected abstract send(type: string, st: St, force: boolean): Promise<void>;

  /** Handles one request message: decode, check the type, note the node, then queue the work. */
  protected request(bytes: Uint8Array): void {
    let req: Req;
    try {
      req = this.decode(bytes);
    } catch (e) {
      return this.bad(GrpcStatus.INVALID_ARGUMENT, (e as Error).message);
    }
    const type = this.typeOf(req.type_url ?? "");
    if (type === undefined) return;
    this.noteNode(req.node);
    this.run(() => this.handle(type, req));
  }

  /** Sends, for every subscribed type in PUSH_ORDER, what changed. */
  protected async push(): Promise<void> {
    for (const type of PUSH_ORDER) {
      const st = this.types.get(type);
      if (st !== undefined && !this.call.closed) await this.send(type, st, false);
    }
  }

  /** Queues work after what is queued. */
  protected run(fn: () => Promise<void> | void): void {
    this.#chain = this.#chain.then(fn).catch((e) =>
      log.warn(`xDS stream ${this.id}: ${(e as Error).message}`)
    );
  }

  /** The type a request asks for, or undefined after ending the stream (a per-type service asked for another). */
  protected typeOf(requested: string): string | undefined {
    if (this.only !== undefined) {
      if (requested === "" || requested === this.only) return this.only;
      this.bad(GrpcStatus.INVALID_ARGUMENT, `this service serves ${this.only}, not ${requested}`);
      return undefined;
    }
    if (requested === "") {
      this.bad(GrpcStatus.INVALID_ARGUMENT, "type_url is required on an aggregated stream");
      return undefined;
    }
    return requested;
  }

  /** Takes the node from the first request (or the first that has one); reports the connection. */
  protected noteNode(n: XdsNode | undefined): void {
    const mesh = this.host.mesh;
    if (this.node === undefined) {
      const node = this.node = nodeInfo(n);
      this.#nodeDefaulted = n === undefined;
      report(() => mesh.connected(node, this.id, this.#transport));
      return;
    }
    if (!this.#nodeDefaulted || n === undefined) return;
    const old = this.node;
    const node = this.node = nodeInfo(n);
    this.#nodeDefaulted = false;
    report(() => mesh.disconnected(old, this.id));
    report(() => mesh.connected(node, this.id, this.#transport));
    this.changed(); // resolved for "?" so far
  }

  /** The current resources of `type` for the node; undefined when the source failed (logged). */
  protected async resolve(
    type: string,
    names: readonly string[] | null,
  ): Promise<Map<string, ResourceEntry> | undefined> {
    if (!SERVED.has(type)) return new Map(); // not served: an empty set, so the client's fetch completes
    try {
      return await this.host.source.resolve(this.node!, type, names);
    } catch (e) {
      log.warn(
        `xDS stream ${this.id}: resolving ${type} for node ${this.node!.id} failed: ${(e as Error).message}`,
      );
      return undefined;
    }
  }

  /** Sends one encoded response; false (and the stream cut) when the client does not read. */
  protected write(bytes: Uint8Array): boolean {
    const host = this.host;
    if (this.call.pendingBytes > host.maxPendingBytes) {
      host.stats.slow_clients.inc();
      this.call.end(GrpcStatus.RESOURCE_EXHAUSTED, "the client does not read its responses");
      return false;
    }
    if (!this.call.send(bytes)) return false;
    host.stats.responses.inc();
    return true;
  }

  /** A bad request: counted, the stream ends with `code`. */
  protected bad(code: number, message: string): void {
    this.host.stats.bad_requests.inc();
    this.call.end(code, message);
  }

  /** Reports an ACK or a NACK of `version`. */
  protected answered(type: string, version: string, error: { message?: string } | undefined): void {
    const { mesh, stats } = this.host;
    const node = this.node!;
    if (error) {
      stats.nacks.inc();
      const message = error.message ?? "";
      log.warn(`NACK from node ${node.id} of ${type} version ${version}: ${message}`);
      report(() => mesh.nacked(node, type, version, message));
    } else {
      stats.acks.inc();
      report(() => mesh.acked(node, type, version));
    }
  }
}

/** Nonces remembered per type for ACK versions (a client ACKs each response; older ones are dropped). */
const MAX_NONCES = 64;

/** The delta state of one type on a stream. */
interface DeltaType {
  wildcard: boolean;
  names: Set<string>;
  /** name -> the version the client holds. */
  known: Map<string, string>;
  /** nonce -> system_version_info of the responses not yet answered. */
  nonces: Map<string, string>;
}

/** An incremental stream (DeltaAggregatedResources or a per-type Delta* method); see the file comment. */
export class DeltaStream extends XdsStream<DeltaDiscoveryRequest, DeltaType> {
  constructor(host: StreamHost, call: GrpcStreamCall, id: string, only: string | undefined) {
    super(host, call, id, only, true);
  }

  protected decode(bytes: Uint8Array): DeltaDiscoveryRequest {
    return decodeDeltaDiscoveryRequest(bytes);
  }

  protected async handle(type: string, req: DeltaDiscoveryRequest): Promise<void> {
    if (this.call.closed) return;
    let st = this.types.get(type);
    const first = st === undefined;
    st ??= { wildcard: false, names: new Set(), known: new Map(), nonces: new Map() };
    const nonce = req.response_nonce ?? "";
    if (nonce !== "") {
      const version = st.nonces.get(nonce);
      if (version === undefined) this.host.stats.stale_nonce.inc();
      else {
        st.nonces.delete(nonce);
        this.answered(type, version, req.error_detail);
      }
    }
    const sub = req.resource_names_subscribe ?? [];
    const unsub = req.resource_names_unsubscribe ?? [];
    const initial = first ? req.initial_resource_versions ?? {} : {};
    for (const [n, v] of Object.entries(initial)) st.known.set(n, v);
    if (first && sub.length === 0 && isWildcardType(type)) st.wildcard = true;
    for (const n of sub) {
      if (n === "*") st.wildcard = true;
      else {
        st.names.add(n);
        if (!(n in initial)) st.known.delete(n); // subscribed again: send it again
      }
    }
    for (const n of unsub) {
      if (n === "*") st.wildcard = false;
      else {
        st.names.delete(n);
        if (!st.wildcard) st.known.delete(n);
      }
    }
    let total = 0;
    for (const [t, s] of this.types) if (t !== type) total += s.names.size;
    if (total + st.names.size > this.host.maxNamesPerStream || st.known.size > this.host.maxNamesPerStream) {
      return this.bad(
        GrpcStatus.RESOURCE_EXHAUSTED,
        `more than ${this.host.maxNamesPerStream} resource names`,
      );
    }
    if (first) this.types.set(type, st);
    if (first || sub.length > 0 || unsub.length > 0) await this.send(type, st, first);
  }

  /** Sends what the client lacks of `type` and what it holds that is gone; `force`: even when nothing. */
  async send(type: string, st: DeltaType, force: boolean): Promise<void> {
    let current: Map<string, ResourceEntry> | undefined;
    if (st.wildcard) current = await this.resolve(type, null);
    else if (st.names.size === 0) current = new Map();
    else current = await this.resolve(type, [...st.names].sort());
    if (current === undefined || this.call.closed) return;
    if (!st.wildcard) { for (const n of [...current.keys()]) if (!st.names.has(n)) current.delete(n); }
    const entries = sortedEntries(current);
    const resources: { name: string; version: string; resource: RawAny }[] = [];
    for (const [name, e] of entries) {
      if (st.known.get(name) !== e.version) resources.push({ name, version: e.version, resource: e.any });
    }
    const removed: string[] = [];
    const dropped: string[] = [];
    for (const n of st.known.keys()) {
      if (current.has(n)) continue;
      if (st.wildcard || st.names.has(n)) removed.push(n);
      else dropped.push(n); // neither wanted nor existing: nothing to tell
    }
    for (const n of dropped) st.known.delete(n);
    if (!force && resources.length === 0 && removed.length === 0) return;
    const version = contentVersion(entries);
    const nonce = this.host.nonce();
    const bytes = encodeDeltaDiscoveryResponse({
      system_version_info: version,
      type_url: type,
      nonce,
      removed_resources: removed.sort(),
      resources,
    });
    if (!this.write(bytes)) return;
    for (const r of resources) st.known.set(r.name, r.version);
    for (const n of removed) st.known.delete(n);
    st.nonces.set(nonce, version);
    if (st.nonces.size > MAX_NONCES) st.nonces.delete(st.nonces.keys().next().value!);
    const node = this.node!;
    report(() => this.host.mesh.sent(node, type, version));
  }
}
