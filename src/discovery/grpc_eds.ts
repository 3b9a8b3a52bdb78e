/**
 * The registry's hosts as v3 EDS over gRPC (h2c, prior knowledge, on its own port: Deno.serve, which serves the
 * HTTP API, cannot send trailers): `EndpointDiscoveryService/StreamEndpoints` and `/DeltaEndpoints`, and the
 * ADS methods `AggregatedDiscoveryService/StreamAggregatedResources` and `/DeltaAggregatedResources` for the
 * ClusterLoadAssignment type only. On ADS a request for another type gets an empty response of that type
 * (version "0", no resources) when it subscribes or changes its names, so a proxy pointing all of its xDS at
 * the registry finishes initializing (it has no dynamic listeners or clusters); the delta variants answer it
 * with nothing removed and nothing added. The EDS-only methods end a stream asking for another type with
 * INVALID_ARGUMENT.
 *
 * State of the world: each request naming services is answered with their assignments (all of them, so the
 * response is complete), a version hashing their content and a fresh nonce; an ACK (the current nonce, same
 * names) waits; a NACK (error_detail) is counted and logged and waits too; a request with an older nonce is
 * ignored, as the protocol says. No names is a wildcard: every registered service. Delta: per-service
 * versions, only changed assignments sent, `initial_resource_versions` honoured; no wildcard.
 *
 * Changes: the Registry tells of check-ins, deregistrations and sweeps; changed services are re-read once per
 * short coalescing window, and every stream watching one whose content hash changed gets the new version.
 * Every `pollIntervalMs` all watched services are re-read as well: what another replica wrote to a shared
 * Redis store, and hosts whose TTL ran out before the sweeper removed them. Limits: `maxStreams` (more are
 * refused with RESOURCE_EXHAUSTED), `maxPendingBytes` unread per stream (a client that does not read is cut),
 * `maxNamesPerStream`. A stream's watches go when it ends. Stats under `discovery.grpc.`.
 */
import { Logger } from "../common/log.ts";
import { xxhash64Hex } from "../common/xxhash64.ts";
import { GrpcStatus } from "../grpc/frame.ts";
import { type GrpcListenOptions, GrpcServer, type GrpcStreamCall } from "../grpc/server.ts";
import type { Counter, Gauge } from "../stats/store.ts";
import { encodeAny } from "../xds/codec/encode.ts";
import {
  decodeDeltaDiscoveryRequest,
  decodeDiscoveryRequest,
  type DeltaDiscoveryRequest,
  encodeDeltaDiscoveryResponse,
  encodeDiscoveryResponse,
  type RawAny,
} from "../xds/codec/discovery.ts";
import type { DiscoveryRequest } from "../xds/types.ts";
import { CLA_TYPE_URL, loadAssignment } from "./eds.ts";
import type { Registry } from "./registry.ts";

const log = new Logger("discovery");

const EDS = "/envoy.service.endpoint.v3.EndpointDiscoveryService/";
const ADS = "/envoy.service.discovery.v3.AggregatedDiscoveryService/";
/** The gRPC methods served. */
export const GRPC_EDS_METHODS = {
  streamEndpoints: `${EDS}StreamEndpoints`,
  deltaEndpoints: `${EDS}DeltaEndpoints`,
  streamAggregated: `${ADS}StreamAggregatedResources`,
  deltaAggregated: `${ADS}DeltaAggregatedResources`,
} as const;

/** Options of GrpcEdsServer. */
export interface GrpcEdsOptions {
  /** Concurrent streams (default 10 000); more are refused with RESOURCE_EXHAUSTED. */
  maxStreams?: number;
  /** Re-read every watched service this often (default 1000 ms; 0: only on the registry's notifications). */
  pollIntervalMs?: number;
  /** Changes within this window are read and pushed together (default 20 ms). */
  coalesceMs?: number;
  /** Bytes sent to a stream and not yet taken by its client beyond which it is cut (default 16 MiB). */
  maxPendingBytes?: number;
  /** Names one stream may watch (default 10 000). */
  maxNamesPerStream?: number;
}

/** The current assignment of a service: content version and encoded ClusterLoadAssignment. */
interface Entry {
  version: string;
  value: Uint8Array;
}

/** What the server needs of a stream. */
interface Watcher {
  /** Some watched service changed (or, for a wildcard stream, the set of services may have). */
  changed(): void;
  /** Stops it (server close). */
  end(code: number, message: string): void;
}

type Stats = Record<
  | "streams_total"
  | "streams_refused"
  | "requests"
  | "responses"
  | "acks"
  | "nacks"
  | "stale_nonce"
  | "unsupported_type"
  | "bad_requests"
  | "slow_clients",
  Counter
>;

/** EDS (and the EDS part of ADS) over gRPC from a Registry; see the file comment. */
export class GrpcEdsServer {
  readonly grpc: GrpcServer;
  readonly registry: Registry;
  readonly maxNamesPerStream: number;
  readonly maxPendingBytes: number;
  /** Stats counters (`discovery.grpc.*`). */
  readonly stats: Stats;
  readonly #active: Gauge;
  readonly #maxStreams: number;
  readonly #coalesceMs: number;
  readonly #streams = new Set<Watcher>();
  readonly #watchers = new Map<string, Set<Watcher>>();
  readonly #wildcards = new Set<Watcher>();
  readonly #entries = new Map<string, Entry>();
  readonly #dirty = new Set<string>();
  readonly #onChange: (service: string | null) => void;
  #dirtyAll = false;
  #flushTimer: ReturnType<typeof setTimeout> | undefined;
  #pollTimer: ReturnType<typeof setInterval> | undefined;
  #flushing: Promise<void> | undefined;
  #closed = false;
  #nonce = 0;

  /** Registers the methods on a new GrpcServer; call `listen`. */
  constructor(registry: Registry, opts: GrpcEdsOptions = {}) {
    this.registry = registry;
    this.#maxStreams = opts.maxStreams ?? 10_000;
    this.#coalesceMs = opts.coalesceMs ?? 20;
    this.maxPendingBytes = opts.maxPendingBytes ?? 16 * 1024 * 1024;
    this.maxNamesPerStream = opts.maxNamesPerStream ?? 10_000;
    const s = registry.stats.scope("discovery.grpc.");
    this.#active = s.gauge("streams_active");
    this.stats = {
      streams_total: s.counter("streams_total"),
      streams_refused: s.counter("streams_refused"),
      requests: s.counter("requests"),
      responses: s.counter("responses"),
      acks: s.counter("acks"),
      nacks: s.counter("nacks"),
      stale_nonce: s.counter("stale_nonce"),
      unsupported_type: s.counter("unsupported_type"),
      bad_requests: s.counter("bad_requests"),
      slow_clients: s.counter("slow_clients"),
    };
    this.grpc = new GrpcServer({ h2: { max_concurrent_streams: 1024 } });
    const m = GRPC_EDS_METHODS;
    this.grpc.registerStream(m.streamEndpoints, (c) => this.#open(c, (x) => new SotwStream(this, x, false)));
    this.grpc.registerStream(m.streamAggregated, (c) => this.#open(c, (x) => new SotwStream(this, x, true)));
    this.grpc.registerStream(m.deltaEndpoints, (c) => this.#open(c, (x) => new DeltaStream(this, x, false)));
    this.grpc.registerStream(m.deltaAggregated, (c) => this.#open(c, (x) => new DeltaStream(this, x, true)));
    this.#onChange = (service) => {
      if (service === null) this.#dirtyAll = true;
      else if (this.#watchers.has(service)) this.#dirty.add(service);
      else if (this.#wildcards.size > 0) this.#dirtyAll = true;
      else return;
      this.#schedule();
    };
    registry.changeListeners.add(this.#onChange);
    const poll = opts.pollIntervalMs ?? 1000;
    if (poll > 0) {
      this.#pollTimer = setInterval(() => {
        if (this.#watchers.size === 0 && this.#wildcards.size === 0) return;
        this.#dirtyAll = true;
        this.#schedule();
      }, poll);
    }
  }

  /** Binds the gRPC port; returns the bound address. */
  listen(opts: GrpcListenOptions): Deno.NetAddr {
    return this.grpc.listen(opts);
  }

  /** Open streams. */
  get streams(): number {
    return this.#streams.size;
  }

  /** Ends every stream (UNAVAILABLE, so clients retry elsewhere) and closes the port. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.registry.changeListeners.delete(this.#onChange);
    clearInterval(this.#pollTimer);
    clearTimeout(this.#flushTimer);
    for (const s of [...this.#streams]) s.end(GrpcStatus.UNAVAILABLE, "registry shutting down");
    await this.#flushing;
    await this.grpc.shutdown(1000);
  }

  /** A fresh nonce. */
  nonce(): string {
    return String(++this.#nonce);
  }

  /** Records that `w` watches `names` (or every service) instead of what it watched; loads missing entries. */
  async watch(
    w: Watcher,
    before: Iterable<string>,
    after: readonly string[],
    wildcard: boolean,
  ): Promise<void> {
    const keep = new Set(after);
    for (const n of before) if (!keep.has(n)) this.#unwatchOne(w, n);
    if (wildcard) this.#wildcards.add(w);
    else this.#wildcards.delete(w);
    const missing: string[] = [];
    for (const n of after) {
      let set = this.#watchers.get(n);
      if (!set) this.#watchers.set(n, set = new Set());
      set.add(w);
      if (!this.#entries.has(n)) missing.push(n);
    }
    await Promise.all(missing.map((n) => this.#load(n)));
  }

  /** Forgets every watch of `w` (its stream ended). */
  unwatch(w: Watcher, names: Iterable<string>): void {
    for (const n of names) this.#unwatchOne(w, n);
    this.#wildcards.delete(w);
    if (this.#streams.delete(w)) this.#active.dec();
  }

  /** The current entry of `service` (undefined while the store cannot say). */
  entry(service: string): Entry | undefined {
    return this.#entries.get(service);
  }

  /** Every registered service (a wildcard stream's names); throws while the store is unreachable. */
  services(): Promise<string[]> {
    return this.registry.services();
  }

  #open(call: GrpcStreamCall, make: (c: GrpcStreamCall) => Watcher): void {
    if (this.#closed || this.#streams.size >= this.#maxStreams) {
      this.stats.streams_refused.inc();
      return call.end(GrpcStatus.RESOURCE_EXHAUSTED, `more than ${this.#maxStreams} xDS streams`);
    }
    this.stats.streams_total.inc();
    this.#active.inc();
    this.#streams.add(make(call));
  }

  #unwatchOne(w: Watcher, n: string): void {
    const set = this.#watchers.get(n);
    if (!set) return;
    set.delete(w);
    if (set.size === 0) {
      this.#watchers.delete(n);
      this.#entries.delete(n);
      this.#dirty.delete(n);
    }
  }

  /** Reads `service` and stores its entry; true when the version changed. */
  async #load(service: string): Promise<boolean> {
    let hosts;
    try {
      hosts = (await this.registry.hosts(service)).hosts;
    } catch {
      return false; // store down and nothing cached: clients keep what they have
    }
    const cla = loadAssignment(service, hosts);
    const json = JSON.stringify(cla);
    const version = xxhash64Hex(json);
    const old = this.#entries.get(service);
    if (old?.version === version) return false;
    if (!this.#watchers.has(service)) return false; // unwatched while reading
    this.#entries.set(service, {
      version,
      value: encodeAny(CLA_TYPE_URL, cla as unknown as Record<string, never>),
    });
    return true;
  }

  #schedule(): void {
    if (this.#closed || this.#flushTimer !== undefined) return;
    this.#flushTimer = setTimeout(() => {
      this.#flushTimer = undefined;
      if (this.#flushing) {
        this.#schedule(); // one flush at a time; this one follows
        return;
      }
      this.#flushing = this.#flush().catch((e) => log.warn(`EDS push failed: ${(e as Error).message}`))
        .finally(() => this.#flushing = undefined);
    }, this.#coalesceMs);
  }

  async #flush(): Promise<void> {
    const all = this.#dirtyAll;
    const names = all ? [...this.#watchers.keys()] : [...this.#dirty];
    this.#dirtyAll = false;
    this.#dirty.clear();
    const changed = await Promise.all(names.map((n) => this.#load(n)));
    const touched = new Set<Watcher>(all ? this.#wildcards : []);
    names.forEach((n, i) => {
      if (changed[i]) { for (const w of this.#watchers.get(n) ?? []) touched.add(w); }
    });
    if (!all && this.#wildcards.size > 0 && names.length > 0) {
      for (const w of this.#wildcards) touched.add(w);
    }
    for (const w of touched) w.changed();
  }
}

/** Serializes a stream's async work (requests and pushes) so responses go out in order. */
class Serial {
  #chain: Promise<void> = Promise.resolve();
  run(fn: () => Promise<void> | void): void {
    this.#chain = this.#chain.then(fn).catch((e) => log.warn(`EDS stream: ${(e as Error).message}`));
  }
}

function nodeId(req: { node?: { id?: string } }): string {
  return req.node?.id ?? "?";
}

/** A state-of-the-world stream (StreamEndpoints, or StreamAggregatedResources). */
class SotwStream implements Watcher {
  readonly #srv: GrpcEdsServer;
  readonly #call: GrpcStreamCall;
  readonly #ads: boolean;
  readonly #serial = new Serial();
  #names: string[] | null = null;
  #wildcard = false;
  #sentVersion = "";
  #sentNonce = "";
  #node = "?";
  /** Other types on ADS: the names last answered (JSON), to answer a change once. */
  readonly #others = new Map<string, string>();

  constructor(srv: GrpcEdsServer, call: GrpcStreamCall, ads: boolean) {
    this.#srv = srv;
    this.#call = call;
    this.#ads = ads;
    call.onMessage = (m) => this.#request(m);
    call.onHalfClose = () => call.end();
    call.onClose = () => srv.unwatch(this, this.#names ?? []);
  }

  changed(): void {
    this.#serial.run(() => this.#send(false));
  }

  end(code: number, message: string): void {
    this.#call.end(code, message);
  }

  #request(bytes: Uint8Array): void {
    const srv = this.#srv;
    srv.stats.requests.inc();
    let req: DiscoveryRequest;
    try {
      req = decodeDiscoveryRequest(bytes);
    } catch (e) {
      srv.stats.bad_requests.inc();
      return this.#call.end(GrpcStatus.INVALID_ARGUMENT, (e as Error).message);
    }
    if (req.node) this.#node = nodeId(req);
    const type = req.type_url ?? "";
    const names = req.resource_names ?? [];
    if (type !== CLA_TYPE_URL) {
      if (!this.#ads && type !== "") {
        srv.stats.bad_requests.inc();
        return this.#call.end(GrpcStatus.INVALID_ARGUMENT, `EDS serves ${CLA_TYPE_URL}, not ${type}`);
      }
      if (type === "") return;
      const key = JSON.stringify(names);
      if (this.#others.get(type) === key) return; // an ACK of the empty answer
      srv.stats.unsupported_type.inc();
      this.#others.set(type, key);
      this.#serial.run(() => {
        this.#write({ version_info: "0", type_url: type, resources: [], nonce: srv.nonce() });
      });
      return;
    }
    if (names.length > srv.maxNamesPerStream) {
      srv.stats.bad_requests.inc();
      return this.#call.end(
        GrpcStatus.RESOURCE_EXHAUSTED,
        `more than ${srv.maxNamesPerStream} resource names`,
      );
    }
    const nonce = req.response_nonce ?? "";
    this.#serial.run(async () => {
      if (nonce !== "" && nonce !== this.#sentNonce) {
        srv.stats.stale_nonce.inc(); // answers a response that a newer one superseded
        return;
      }
      if (nonce !== "") {
        if (req.error_detail) {
          srv.stats.nacks.inc();
          log.warn(
            `EDS NACK from node ${this.#node} (version ${req.version_info ?? ""}): ` +
              `${req.error_detail.message ?? ""}`,
          );
        } else srv.stats.acks.inc();
      }
      const wildcard = names.length === 0;
      const same = this.#names !== null && wildcard === this.#wildcard &&
        names.length === this.#names.length && names.every((n, i) => n === this.#names![i]);
      if (same && nonce !== "") return; // ACK or NACK of the current subscription: wait for a change
      const before = this.#names ?? [];
      this.#names = [...names];
      this.#wildcard = wildcard;
      await srv.watch(this, before, wildcard ? [] : this.#names, wildcard);
      await this.#send(true);
    });
  }

  async #send(force: boolean): Promise<void> {
    if (this.#call.closed || this.#names === null) return;
    const srv = this.#srv;
    let names = this.#names;
    if (this.#wildcard) {
      try {
        names = await srv.services();
      } catch {
        return;
      }
      await srv.watch(this, this.#names, names, true);
      this.#names = names;
    }
    const resources: RawAny[] = [];
    const versions: string[] = [];
    for (const n of names) {
      const e = srv.entry(n);
      if (!e) continue;
      resources.push({ type_url: CLA_TYPE_URL, value: e.value });
      versions.push(`${n}=${e.version}`);
    }
    const version = xxhash64Hex(versions.join("\n"));
    if (!force && version === this.#sentVersion) return;
    this.#sentVersion = version;
    this.#sentNonce = srv.nonce();
    this.#write({ version_info: version, type_url: CLA_TYPE_URL, resources, nonce: this.#sentNonce });
  }

  #write(res: { version_info: string; type_url: string; resources: RawAny[]; nonce: string }): void {
    const srv = this.#srv;
    if (this.#call.pendingBytes > srv.maxPendingBytes) {
      srv.stats.slow_clients.inc();
      return this.#call.end(GrpcStatus.RESOURCE_EXHAUSTED, "the client does not read its responses");
    }
    if (this.#call.send(encodeDiscoveryResponse(res))) srv.stats.responses.inc();
  }
}

/** An incremental stream (DeltaEndpoints, or DeltaAggregatedResources). */
class DeltaStream implements Watcher {
  readonly #srv: GrpcEdsServer;
  readonly #call: GrpcStreamCall;
  readonly #ads: boolean;
  readonly #serial = new Serial();
  readonly #subscribed = new Set<string>();
  /** Version the client has of each subscribed service. */
  readonly #sent = new Map<string, string>();
  #node = "?";
  readonly #others = new Set<string>();

  constructor(srv: GrpcEdsServer, call: GrpcStreamCall, ads: boolean) {
    this.#srv = srv;
    this.#call = call;
    this.#ads = ads;
    call.onMessage = (m) => this.#request(m);
    call.onHalfClose = () => call.end();
    call.onClose = () => srv.unwatch(this, this.#subscribed);
  }

  changed(): void {
    this.#serial.run(() => this.#send());
  }

  end(code: number, message: string): void {
    this.#call.end(code, message);
  }

  #request(bytes: Uint8Array): void {
    const srv = this.#srv;
    srv.stats.requests.inc();
    let req: DeltaDiscoveryRequest;
    try {
      req = decodeDeltaDiscoveryRequest(bytes);
    } catch (e) {
      srv.stats.bad_requests.inc();
      return this.#call.end(GrpcStatus.INVALID_ARGUMENT, (e as Error).message);
    }
    if (req.node) this.#node = nodeId(req);
    const type = req.type_url ?? "";
    if (type !== CLA_TYPE_URL) {
      if (!this.#ads) {
        srv.stats.bad_requests.inc();
        return this.#call.end(GrpcStatus.INVALID_ARGUMENT, `EDS serves ${CLA_TYPE_URL}, not ${type}`);
      }
      if (req.response_nonce || this.#others.has(type)) return;
      this.#others.add(type);
      srv.stats.unsupported_type.inc();
      this.#serial.run(() =>
        this.#write({
          system_version_info: "0",
          type_url: type,
          nonce: srv.nonce(),
          removed_resources: [],
          resources: [],
        })
      );
      return;
    }
    if (req.response_nonce) {
      if (req.error_detail) {
        srv.stats.nacks.inc();
        log.warn(`EDS NACK (delta) from node ${this.#node}: ${req.error_detail.message ?? ""}`);
      } else srv.stats.acks.inc();
    }
    const sub = req.resource_names_subscribe ?? [];
    const unsub = req.resource_names_unsubscribe ?? [];
    if (sub.length === 0 && unsub.length === 0) return;
    this.#serial.run(async () => {
      const before = [...this.#subscribed];
      for (const n of unsub) {
        this.#subscribed.delete(n);
        this.#sent.delete(n);
      }
      for (const n of sub) {
        if (n === "*") continue; // no wildcard on delta EDS
        this.#subscribed.add(n);
        const known = req.initial_resource_versions?.[n];
        if (known !== undefined && !this.#sent.has(n)) this.#sent.set(n, known);
        else if (known === undefined) this.#sent.delete(n); // a (re)subscription gets it again
      }
      if (this.#subscribed.size > srv.maxNamesPerStream) {
        srv.stats.bad_requests.inc();
        return this.#call.end(GrpcStatus.RESOURCE_EXHAUSTED, `more than ${srv.maxNamesPerStream} names`);
      }
      await srv.watch(this, before, [...this.#subscribed], false);
      await this.#send();
    });
  }

  #send(): Promise<void> {
    if (this.#call.closed) return Promise.resolve();
    const srv = this.#srv;
    const resources: { name: string; version: string; resource: RawAny }[] = [];
    for (const n of this.#subscribed) {
      const e = srv.entry(n);
      if (!e || this.#sent.get(n) === e.version) continue;
      this.#sent.set(n, e.version);
      resources.push({ name: n, version: e.version, resource: { type_url: CLA_TYPE_URL, value: e.value } });
    }
    if (resources.length > 0) {
      this.#write({
        system_version_info: "",
        type_url: CLA_TYPE_URL,
        nonce: srv.nonce(),
        removed_resources: [],
        resources,
      });
    }
    return Promise.resolve();
  }

  #write(res: Parameters<typeof encodeDeltaDiscoveryResponse>[0]): void {
    const srv = this.#srv;
    if (this.#call.pendingBytes > srv.maxPendingBytes) {
      srv.stats.slow_clients.inc();
      return this.#call.end(GrpcStatus.RESOURCE_EXHAUSTED, "the client does not read its responses");
    }
    if (this.#call.send(encodeDeltaDiscoveryResponse(res))) srv.stats.responses.inc();
  }
}
