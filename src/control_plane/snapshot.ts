/**
 * The control plane's snapshot cache: the encoded resources of every node cluster (from the builder), the
 * endpoints of every service a build names (from the registry, with central health-check verdicts as
 * `health_status`) and the secrets read from files. It is the `XdsSource` every xDS server reads: a node gets
 * only what its own build names (a node cluster without a build gets nothing, safely), versions are content
 * hashes (replicas agree, a restart does not make proxies reload), and a change notifies exactly the node
 * clusters it touches.
 *
 * Endpoints: registry changes (or HDS verdicts) mark services dirty; dirty services are re-read together
 * after a short coalescing window. A service that cannot be read and was never read is left out of
 * responses, so proxies keep what they have (Envoy keeps an EDS resource a response omits).
 */
import { Logger } from "../common/log.ts";
import { xxhash64Hex } from "../common/xxhash64.ts";
import { loadAssignment } from "../discovery/eds.ts";
import type { HostRecord } from "../discovery/types.ts";
import { encodeAny } from "../xds/codec/encode.ts";
import { TYPE_URLS } from "../xds/types.ts";
import type { Build, Json, NodeConfig } from "./builder.ts";
import { emptyNode } from "./builder.ts";
import type { EndpointSource } from "./endpoints.ts";
import { type NodeInfo, type ResourceEntry, SECRET_TYPE_URL, type XdsSource } from "./types.ts";

const log = new Logger("control-plane");

/** Central health checking's verdict on one endpoint (undefined: nobody reported). */
export type HealthVerdict = (
  service: string,
  address: string,
  port: number,
) => "HEALTHY" | "UNHEALTHY" | undefined;

/** Encodes one resource. */
export function entryOf(typeUrl: string, json: Json): ResourceEntry {
  return entryOfText(typeUrl, json, JSON.stringify(json));
}

function entryOfText(typeUrl: string, json: Json, text: string): ResourceEntry {
  return {
    version: xxhash64Hex(text),
    any: { type_url: typeUrl, value: encodeAny(typeUrl, json as Record<string, never>) },
  };
}

/**
 * Encoded resources by content (type URL and JSON text), so a rebuild encodes only what changed and nodes
 * with identical resources (the same upstream cluster, API listener) share one encoding.
 */
class EntryCache {
  #prev = new Map<string, ResourceEntry>();
  #next = new Map<string, ResourceEntry>();

  get(typeUrl: string, json: Json): ResourceEntry {
    const text = JSON.stringify(json);
    const key = `${typeUrl}\n${text}`;
    let e = this.#next.get(key);
    if (e === undefined) {
      e = this.#prev.get(key) ?? entryOfText(typeUrl, json, text);
      this.#next.set(key, e);
    }
    return e;
  }

  /** Ends a build: keeps only what it used. */
  commit(): void {
    this.#prev = this.#next;
    this.#next = new Map();
  }
}

/** One node cluster's resources, encoded. */
interface NodeEntries {
  listeners: Map<string, ResourceEntry>;
  apiListeners: Map<string, ResourceEntry>;
  routes: Map<string, ResourceEntry>;
  clusters: Map<string, ResourceEntry>;
  endpoints: string[];
  secrets: string[];
  /** Content version of the whole node config (for reports). */
  version: string;
}

function encodeNode(c: NodeConfig, cache: EntryCache): NodeEntries {
  const parts: string[] = [];
  const map = (type: string, list: Json[]) => {
    const m = new Map<string, ResourceEntry>();
    for (const r of list) {
      const e = cache.get(type, r);
      m.set(r.name as string, e);
      parts.push(`${type} ${r.name} ${e.version}`);
    }
    return m;
  };
  const n = {
    listeners: map(TYPE_URLS.listener, c.listeners),
    apiListeners: map(TYPE_URLS.listener, c.apiListeners),
    routes: map(TYPE_URLS.route, c.routes),
    clusters: map(TYPE_URLS.cluster, c.clusters),
    endpoints: [...c.endpoints],
    secrets: [...c.secrets],
    version: "",
  };
  parts.push(`eds ${n.endpoints.join(",")}`, `sds ${n.secrets.join(",")}`);
  n.version = xxhash64Hex(parts.join("\n"));
  return n;
}

function sameEntries(a: Map<string, ResourceEntry>, b: Map<string, ResourceEntry>): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of a) if (b.get(k)?.version !== v.version) return false;
  return true;
}

function sameNode(a: NodeEntries, b: NodeEntries): boolean {
  return a.version === b.version;
}

/** Options of SnapshotCache. */
export interface SnapshotCacheOptions {
  /** Central health checking's verdicts, applied as endpoint health_status. */
  health?: HealthVerdict;
  /** Registry changes within this window are read together (default 20 ms). */
  coalesceMs?: number;
}

/** See the file comment. */
export class SnapshotCache implements XdsSource {
  readonly changeListeners = new Set<(nodeClusters: ReadonlySet<string> | null) => void>();
  readonly #source: EndpointSource;
  readonly #health: HealthVerdict | undefined;
  readonly #coalesceMs: number;
  #nodes = new Map<string, NodeEntries>();
  readonly #encoded = new EntryCache();
  readonly #empty: NodeEntries = encodeNode(emptyNode(), new EntryCache());
  /** Service -> its ClusterLoadAssignment entry. */
  readonly #eds = new Map<string, ResourceEntry>();
  /** Service -> the node clusters whose build names it. */
  #edsUsers = new Map<string, Set<string>>();
  /** Secret name -> entry. */
  #secrets = new Map<string, ResourceEntry>();
  readonly #dirty = new Set<string>();
  readonly #onSource: (service: string | null) => void;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #flushing: Promise<void> | undefined;
  #closed = false;

  constructor(source: EndpointSource, opts: SnapshotCacheOptions = {}) {
    this.#source = source;
    this.#health = opts.health;
    this.#coalesceMs = opts.coalesceMs ?? 20;
    this.#onSource = (s) => this.endpointsChanged(s === null ? null : [s]);
    source.changeListeners.add(this.#onSource);
  }

  /** The node clusters with a build. */
  nodeClusters(): string[] {
    return [...this.#nodes.keys()];
  }

  /** Whether `cluster` has a build (a proxy of an unknown service gets the empty one). */
  hasNode(cluster: string): boolean {
    return this.#nodes.has(cluster);
  }

  /** The content version of a node cluster's whole config. */
  nodeVersion(cluster: string): string | undefined {
    return this.#nodes.get(cluster)?.version;
  }

  /** Every service some build names. */
  services(): string[] {
    return [...this.#edsUsers.keys()].sort();
  }

  /** The CLA version currently served for `service`. */
  endpointVersion(service: string): string | undefined {
    return this.#eds.get(service)?.version;
  }

  /**
   * Installs a new build: reads the endpoints of services it adds, then tells the node clusters whose
   * resources changed. Returns them.
   */
  async setBuild(build: Build): Promise<ReadonlySet<string>> {
    const next = new Map<string, NodeEntries>();
    for (const [cluster, cfg] of build.nodes) next.set(cluster, encodeNode(cfg, this.#encoded));
    this.#encoded.commit();
    const users = new Map<string, Set<string>>();
    for (const [cluster, n] of next) {
      for (const s of n.endpoints) {
        let set = users.get(s);
        if (!set) users.set(s, set = new Set());
        set.add(cluster);
      }
    }
    const added = [...users.keys()].filter((s) => !this.#eds.has(s));
    this.#source.watch(new Set(users.keys()));
    await Promise.all(added.map((s) => this.#load(s)));
    for (const s of this.#eds.keys()) if (!users.has(s)) this.#eds.delete(s);
    const changed = new Set<string>();
    for (const [cluster, n] of next) {
      const old = this.#nodes.get(cluster);
      if (!old || !sameNode(old, n)) changed.add(cluster);
    }
    for (const cluster of this.#nodes.keys()) if (!next.has(cluster)) changed.add(cluster);
    this.#nodes = next;
    this.#edsUsers = users;
    this.#notify(changed);
    return changed;
  }

  /** Installs the secrets (name -> envoy.extensions.transport_sockets.tls.v3.Secret JSON); tells their users. */
  setSecrets(secrets: ReadonlyMap<string, Json>): void {
    const next = new Map<string, ResourceEntry>();
    for (const [name, json] of secrets) next.set(name, entryOf(SECRET_TYPE_URL, json));
    if (sameEntries(this.#secrets, next)) return;
    const changed = new Set<string>();
    for (const [cluster, n] of this.#nodes) {
      if (n.secrets.some((s) => this.#secrets.get(s)?.version !== next.get(s)?.version)) changed.add(cluster);
    }
    this.#secrets = next;
    this.#notify(changed);
  }

  /** Hosts or health of these services (null: any) may have changed: re-read them after the window. */
  endpointsChanged(services: Iterable<string> | null): void {
    if (this.#closed) return;
    for (const s of services ?? this.#edsUsers.keys()) if (this.#edsUsers.has(s)) this.#dirty.add(s);
    if (this.#dirty.size === 0 || this.#timer !== undefined) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (this.#flushing) return this.endpointsChanged([]); // one at a time; this one follows
      this.#flushing = this.#flush().finally(() => this.#flushing = undefined);
    }, this.#coalesceMs);
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#source.changeListeners.delete(this.#onSource);
    await this.#flushing;
  }

  resolve(
    node: NodeInfo,
    typeUrl: string,
    names: readonly string[] | null,
  ): Promise<Map<string, ResourceEntry>> {
    const n = this.#nodes.get(node.cluster) ?? this.#empty;
    const out = new Map<string, ResourceEntry>();
    const pick = (from: Map<string, ResourceEntry>, extra?: Map<string, ResourceEntry>) => {
      if (names === null) return new Map(from);
      for (const name of names) {
        const e = from.get(name) ?? extra?.get(name);
        if (e) out.set(name, e);
      }
      return out;
    };
    switch (typeUrl) {
      case TYPE_URLS.listener:
        return Promise.resolve(pick(n.listeners, n.apiListeners));
      case TYPE_URLS.route:
        return Promise.resolve(pick(n.routes));
      case TYPE_URLS.cluster:
        return Promise.resolve(pick(n.clusters));
      case TYPE_URLS.endpoint:
      case SECRET_TYPE_URL: {
        const eds = typeUrl === TYPE_URLS.endpoint;
        const allowed = eds ? n.endpoints : n.secrets;
        const from = eds ? this.#eds : this.#secrets;
        const wanted = names === null ? allowed : names.filter((x) => allowed.includes(x));
        for (const name of wanted) {
          const e = from.get(name);
          if (e) out.set(name, e);
        }
        return Promise.resolve(out);
      }
      default:
        return Promise.resolve(out);
    }
  }

  #notify(changed: ReadonlySet<string>): void {
    if (changed.size === 0) return;
    for (const l of this.changeListeners) l(changed);
  }

  async #flush(): Promise<void> {
    const names = [...this.#dirty];
    this.#dirty.clear();
    const changed = await Promise.all(names.map((s) => this.#load(s)));
    const clusters = new Set<string>();
    names.forEach((s, i) => {
      if (changed[i]) { for (const c of this.#edsUsers.get(s) ?? []) clusters.add(c); }
    });
    this.#notify(clusters);
  }

  /** Reads one service's hosts into its CLA entry; true when the version changed. */
  async #load(service: string): Promise<boolean> {
    let hosts: readonly HostRecord[];
    try {
      hosts = await this.#source.hosts(service);
    } catch (e) {
      log.debug(`hosts of ${service} unavailable: ${(e as Error).message}`);
      return false; // keep the last assignment (or none): proxies keep what they have
    }
    const cla = loadAssignment(service, hosts) as unknown as Json;
    if (this.#health) this.#applyHealth(service, cla);
    const entry = entryOf(TYPE_URLS.endpoint, cla);
    if (this.#eds.get(service)?.version === entry.version) return false;
    this.#eds.set(service, entry);
    return true;
  }

  #applyHealth(service: string, cla: Json): void {
    for (const loc of cla.endpoints as { lb_endpoints: Json[] }[]) {
      for (const lb of loc.lb_endpoints) {
        const sa = (lb.endpoint as { address: { socket_address: { address: string; port_value: number } } })
          .address.socket_address;
        const v = this.#health!(service, sa.address, sa.port_value);
        if (v !== undefined) lb.health_status = v;
      }
    }
  }
}
