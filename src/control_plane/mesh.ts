/**
 * The mesh coverage report (`GET /mesh`): what Lyft kept in a spreadsheet while rolling Envoy out. The xDS
 * servers tell `MeshState` of every proxy's streams, and of the versions it was sent, ACKed and NACKed (with
 * the reason); the report joins that with the registry (every service and its hosts) and the build (which
 * services have a manifest): services whose hosts have no connected proxy, proxies of services without a
 * manifest (they got the empty default), proxies behind on a version, every NACK.
 *
 * A host counts as covered when a connected proxy's node.id is the host's `instance_id` tag, its IP, or
 * `ip:port` (what `nuncio register` and the bootstrap's node.id make easy to line up).
 */
import type { HostRecord } from "../discovery/types.ts";
import type { Counter, Scope } from "../stats/store.ts";
import { type MeshObserver, type NodeInfo, PUSH_ORDER } from "./types.ts";

/** What the report says of one type on one proxy. */
export interface TypeState {
  sent?: string;
  acked?: string;
  /** The version rejected, the one the proxy kept, why, when. */
  nacked?: { version: string; kept: string; message: string; at: string };
}

/** One proxy (node.id). */
export interface ProxyState {
  id: string;
  cluster: string;
  userAgent?: string;
  /** Stream id -> transport (gRPC). */
  streams: Map<string, string>;
  /** REST pollers: id -> last poll time. */
  polls: Map<string, number>;
  firstSeen: number;
  lastSeen: number;
  types: Map<string, TypeState>;
}

/** A NACK as kept for the report. */
export interface NackRecord {
  node: string;
  cluster: string;
  type: string;
  /** The version rejected. */
  version: string;
  /** The version the proxy kept serving. */
  kept: string;
  message: string;
  at: string;
}

const MAX_NACKS = 100;
/** A REST "stream" (a poller) counts as connected this long after its last poll. */
export const REST_LEASE_MS = 60_000;
/** Disconnected proxies are kept this long (for the report), then forgotten. */
const FORGET_MS = 3_600_000;

function shortType(typeUrl: string): string {
  return typeUrl.slice(typeUrl.lastIndexOf(".") + 1);
}

/** Records what proxies do; see the file comment. */
export class MeshState implements MeshObserver {
  readonly proxies = new Map<string, ProxyState>();
  /** The latest NACKs, newest last. */
  readonly nacks: NackRecord[] = [];
  readonly #now: () => number;
  readonly #c: { acks: Counter; nacks: Counter; connects: Counter };

  constructor(stats: Scope, now: () => number = Date.now) {
    this.#now = now;
    this.#c = {
      acks: stats.counter("acks"),
      nacks: stats.counter("nacks"),
      connects: stats.counter("proxy_connects"),
    };
  }

  #proxy(node: NodeInfo): ProxyState {
    let p = this.proxies.get(node.id);
    const now = this.#now();
    if (!p) {
      p = {
        id: node.id,
        cluster: node.cluster,
        streams: new Map(),
        polls: new Map(),
        firstSeen: now,
        lastSeen: now,
        types: new Map(),
      };
      this.proxies.set(node.id, p);
    }
    p.cluster = node.cluster;
    if (node.userAgent) p.userAgent = node.userAgent;
    p.lastSeen = now;
    return p;
  }

  #type(node: NodeInfo, typeUrl: string): TypeState {
    const p = this.#proxy(node);
    let t = p.types.get(typeUrl);
    if (!t) p.types.set(typeUrl, t = {});
    return t;
  }

  connected(node: NodeInfo, stream: string, transport: string): void {
    const p = this.#proxy(node);
    if (transport === "rest") {
      if (!p.polls.has(stream)) this.#c.connects.inc();
      p.polls.set(stream, this.#now()); // a REST poller never disconnects: it holds a lease
    } else {
      this.#c.connects.inc();
      p.streams.set(stream, transport);
    }
    this.#forget();
  }

  /** Whether a proxy has a live stream, or polled within the lease. */
  isConnected(p: ProxyState): boolean {
    if (p.streams.size > 0) return true;
    const cutoff = this.#now() - REST_LEASE_MS;
    for (const at of p.polls.values()) if (at >= cutoff) return true;
    return false;
  }

  /** The transports a proxy uses now. */
  transports(p: ProxyState): string[] {
    const polling = [...p.polls.values()].some((at) => at >= this.#now() - REST_LEASE_MS);
    return [...new Set([...p.streams.values(), ...(polling ? ["rest"] : [])])];
  }

  disconnected(node: NodeInfo, stream: string): void {
    this.proxies.get(node.id)?.streams.delete(stream);
  }

  sent(node: NodeInfo, typeUrl: string, version: string): void {
    this.#type(node, typeUrl).sent = version;
  }

  acked(node: NodeInfo, typeUrl: string, version: string): void {
    this.#c.acks.inc();
    const t = this.#type(node, typeUrl);
    t.acked = version;
    if (t.nacked && (t.nacked.version === version || t.sent === version)) t.nacked = undefined;
  }

  nacked(node: NodeInfo, typeUrl: string, version: string, message: string): void {
    this.#c.nacks.inc();
    const at = new Date(this.#now()).toISOString();
    const t = this.#type(node, typeUrl);
    // the request names the version the proxy kept; the one it rejected is the one last sent
    const rejected = t.sent ?? version;
    t.nacked = { version: rejected, kept: version, message, at };
    const type = shortType(typeUrl);
    this.nacks.push({
      node: node.id,
      cluster: node.cluster,
      type,
      version: rejected,
      kept: version,
      message,
      at,
    });
    if (this.nacks.length > MAX_NACKS) this.nacks.splice(0, this.nacks.length - MAX_NACKS);
  }

  /** Connected proxies of a node cluster. */
  connectedOf(cluster: string): ProxyState[] {
    return [...this.proxies.values()].filter((p) => p.cluster === cluster && this.isConnected(p));
  }

  #forget(): void {
    const cutoff = this.#now() - FORGET_MS;
    for (const [id, p] of this.proxies) {
      if (!this.isConnected(p) && p.lastSeen < cutoff) this.proxies.delete(id);
    }
  }
}

/** What the report is built from. */
export interface MeshInputs {
  mesh: MeshState;
  /** Registered services and their hosts (undefined when the registry cannot say). */
  registered?: Map<string, readonly HostRecord[]>;
  /** Services with a manifest, and the edge's node cluster. */
  manifests: ReadonlySet<string>;
  edge?: string;
  /** Input files rejected, with their errors. */
  errors: string[];
  /** The current whole-config version of each node cluster. */
  nodeVersion(cluster: string): string | undefined;
}

/** The report as JSON. */
export function meshReport(i: MeshInputs): Record<string, unknown> {
  const proxies = [...i.mesh.proxies.values()].sort((a, b) => a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
  const connectedIds = new Set(proxies.filter((p) => i.mesh.isConnected(p)).map((p) => p.id));
  const names = new Set<string>([...i.manifests, ...(i.registered?.keys() ?? [])]);
  const services = [...names].sort().map((name) => {
    const hosts = i.registered?.get(name) ?? [];
    const covered = hosts.filter((h) =>
      connectedIds.has(h.tags.instance_id ?? "\0") || connectedIds.has(h.ip_address) ||
      connectedIds.has(`${h.ip_address}:${h.port}`)
    );
    const connected = i.mesh.connectedOf(name);
    return {
      service: name,
      manifest: i.manifests.has(name),
      hosts: hosts.length,
      hosts_with_proxy: covered.length,
      hosts_without_proxy: hosts.filter((h) => !covered.includes(h)).map((h) => `${h.ip_address}:${h.port}`),
      proxies_connected: connected.length,
      config_version: i.nodeVersion(name) ?? null,
    };
  });
  return {
    services,
    services_with_hosts_but_no_proxy: services.filter((s) => s.hosts > 0 && s.proxies_connected === 0)
      .map((s) => s.service),
    proxies_without_manifest: proxies.filter((p) =>
      i.mesh.isConnected(p) && !i.manifests.has(p.cluster) &&
      p.cluster !== i.edge
    ).map((p) => ({ id: p.id, cluster: p.cluster })),
    proxies: proxies.map((p) => ({
      id: p.id,
      cluster: p.cluster,
      user_agent: p.userAgent ?? null,
      connected: i.mesh.isConnected(p),
      transports: i.mesh.transports(p),
      last_seen: new Date(p.lastSeen).toISOString(),
      types: Object.fromEntries(
        [...p.types].sort((a, b) => PUSH_ORDER.indexOf(a[0]) - PUSH_ORDER.indexOf(b[0])).map(([t, s]) => [
          shortType(t),
          {
            sent: s.sent ?? null,
            acked: s.acked ?? null,
            up_to_date: s.sent !== undefined && s.sent === s.acked,
            ...(s.nacked ? { nacked: s.nacked } : {}),
          },
        ]),
      ),
    })),
    nacks: i.mesh.nacks,
    input_errors: i.errors,
    registry_reachable: i.registered !== undefined,
  };
}

const esc = (s: unknown) =>
  String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]!);

/** The report as a readable page. */
export function meshPage(report: Record<string, unknown>): string {
  const r = report as {
    services: Record<string, unknown>[];
    services_with_hosts_but_no_proxy: string[];
    proxies_without_manifest: { id: string; cluster: string }[];
    proxies: {
      id: string;
      cluster: string;
      connected: boolean;
      types: Record<string, Record<string, unknown>>;
    }[];
    nacks: NackRecord[];
    input_errors: string[];
    registry_reachable: boolean;
  };
  const rows = (cells: unknown[]) => `<tr>${cells.map((c) => `<td>${esc(c)}</td>`).join("")}</tr>`;
  const head = (cells: string[]) => `<tr>${cells.map((c) => `<th>${esc(c)}</th>`).join("")}</tr>`;
  const out: string[] = [
    "<!doctype html><html><head><meta charset=utf-8><title>nuncio mesh</title>",
    "<style>body{font:14px sans-serif;margin:1em}table{border-collapse:collapse;margin-bottom:1.5em}",
    "td,th{border:1px solid #ccc;padding:2px 8px;text-align:left}.bad{color:#b00}</style></head><body>",
    "<h1>Mesh coverage</h1>",
  ];
  if (!r.registry_reachable) out.push('<p class="bad">The registry cannot be read: hosts are not shown.</p>');
  if (r.input_errors.length > 0) {
    out.push('<h2 class="bad">Rejected inputs (the last good version serves)</h2><pre>');
    out.push(esc(r.input_errors.join("\n")), "</pre>");
  }
  out.push("<h2>Services</h2><table>");
  out.push(head(["service", "manifest", "hosts", "hosts with proxy", "proxies connected", "without proxy"]));
  for (const s of r.services) {
    out.push(rows([
      s.service,
      s.manifest ? "yes" : "no",
      s.hosts,
      s.hosts_with_proxy,
      s.proxies_connected,
      (s.hosts_without_proxy as string[]).join(" "),
    ]));
  }
  out.push("</table>");
  if (r.services_with_hosts_but_no_proxy.length > 0) {
    out.push(`<p class="bad">Hosts but no proxy: ${esc(r.services_with_hosts_but_no_proxy.join(", "))}</p>`);
  }
  if (r.proxies_without_manifest.length > 0) {
    const list = r.proxies_without_manifest.map((p) => `${p.id} (${p.cluster})`).join(", ");
    out.push(`<p class="bad">Proxies of services without a manifest (empty config): ${esc(list)}</p>`);
  }
  out.push(
    "<h2>Proxies</h2><table>",
    head(["node.id", "cluster", "connected", "type", "sent", "acked", "nack"]),
  );
  for (const p of r.proxies) {
    for (const [t, s] of Object.entries(p.types)) {
      const n = s.nacked as { message: string } | undefined;
      out.push(
        rows([p.id, p.cluster, p.connected ? "yes" : "no", t, s.sent ?? "", s.acked ?? "", n?.message ?? ""]),
      );
    }
  }
  out.push("</table><h2>Latest NACKs</h2><table>", head(["at", "node", "type", "version", "reason"]));
  for (const n of [...r.nacks].reverse()) out.push(rows([n.at, n.node, n.type, n.version, n.message]));
  out.push("</table></body></html>");
  return out.join("\n");
}
