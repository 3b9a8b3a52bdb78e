/**
 * The control plane's Health Discovery Service (envoy.service.health.v3.HealthDiscoveryService, the server
 * side of Envoy's HdsDelegate): proxies open `StreamHealthCheck`, say who they are (a HealthCheckRequest with
 * node.id) and are each given a share of the endpoints to health check (a HealthCheckSpecifier: one
 * ClusterHealthCheck per service with the service's HealthCheck and its endpoints by zone, `interval` = how
 * often to report). Each endpoint is checked by `min(k, connected proxies)` proxies chosen by rendezvous
 * hashing (hds_assign.ts), so shares move little when proxies come and go; a proxy whose share changed gets a
 * new specifier at once. Proxies report EndpointHealthResponses (`cluster_endpoints_health`, or the flat
 * `endpoints_health` of older clients, which is matched to the services of the proxy's share).
 *
 * The verdict on an endpoint: HEALTHY when most of the latest reports of its current checkers say HEALTHY (or
 * DEGRADED), UNHEALTHY when most say anything else (UNHEALTHY, TIMEOUT, DRAINING); on a tie the previous
 * verdict stays; undefined until one of them reported (UNKNOWN is no report). A checker that disconnects, or is
 * no longer assigned the endpoint, stops counting. `healthListeners` hear which services' verdicts changed.
 * Stats under `hds.` of the given scope.
 */
import { Logger } from "../common/log.ts";
import { GrpcStatus } from "../grpc/frame.ts";
import type { GrpcServer, GrpcStreamCall } from "../grpc/server.ts";
import type { Counter, Gauge, Scope } from "../stats/store.ts";
import { encodeMessage } from "../xds/codec/encode.ts";
import { decodeMessage } from "../xds/codec/proto_json.ts";
import { messageType } from "../xds/codec/root.ts";
import { assignCheckers, endpointKey } from "./hds_assign.ts";
import {
  type EndpointHealthResponse,
  type HdsEndpoint,
  type HdsTarget,
  reportedHealth,
  specifierJson,
} from "./hds_messages.ts";

const log = new Logger("control-plane");

/** The gRPC method served. */
export const HDS_METHOD = "/envoy.service.health.v3.HealthDiscoveryService/StreamHealthCheck";

export type { HdsEndpoint, HdsTarget } from "./hds_messages.ts";

/** The verdict on an endpoint. */
export type HdsVerdict = "HEALTHY" | "UNHEALTHY";

/** Options of an HdsServer. */
export interface HdsServerOptions {
  /** The current targets (read at start and on `targetsChanged`). */
  targets: () => HdsTarget[];
  /** Proxies checking each endpoint (default 2). */
  checkersPerEndpoint?: number;
  /** How often proxies report, sent as the specifier's `interval` (default 10 s). */
  intervalMs?: number;
  /** Where `hds.*` stats go. */
  stats: Scope;
  /** Wall clock for report times (default Date.now). */
  now?: () => number;
}

interface Report {
  status: string;
  at: number;
}

interface Client {
  node: string;
  cluster: string;
  call: GrpcStreamCall;
  since: number;
  /** Endpoints assigned, by service. */
  share: Map<string, HdsEndpoint[]>;
  /** The last specifier sent (JSON), to send only changes. */
  sent: string;
  reports: number;
  lastReportAt: number;
}

/** One stream before and after it named its node. */
interface Stream {
  call: GrpcStreamCall;
  client?: Client;
}

interface Stats {
  streams_total: Counter;
  streams_active: Gauge;
  proxies: Gauge;
  reports: Counter;
  reports_ignored: Counter;
  specifiers_sent: Counter;
  verdict_changes: Counter;
  bad_messages: Counter;
}

const REQUEST_TYPE = "envoy.service.health.v3.HealthCheckRequestOrEndpointHealthResponse";
const SPECIFIER_TYPE = "envoy.service.health.v3.HealthCheckSpecifier";
const HEALTH_CHECK_TYPE = "envoy.config.core.v3.HealthCheck";

/** Health statuses that count as healthy votes. */
const HEALTHY_VOTES = new Set(["HEALTHY", "DEGRADED"]);

/** The HDS server; see the file comment. */
export class HdsServer {
  /** Told (with the services concerned) whenever the verdict on some of their endpoints changed. */
  readonly healthListeners = new Set<(services: ReadonlySet<string>) => void>();
  readonly #o: HdsServerOptions;
  readonly #k: number;
  readonly #intervalMs: number;
  readonly #now: () => number;
  readonly #stats: Stats;
  /** Connected proxies by node id (one stream each: a newer stream of the same node replaces the older). */
  readonly #clients = new Map<string, Client>();
  readonly #streams = new Set<Stream>();
  /** Current targets by service (those whose health check encodes). */
  #targets = new Map<string, HdsTarget>();
  /** Endpoint by key, with its service. */
  #endpoints = new Map<string, { service: string; ep: HdsEndpoint }>();
  /** Checkers by endpoint key. */
  #checkers = new Map<string, string[]>();
  /** Latest report by endpoint key, then node. */
  readonly #reports = new Map<string, Map<string, Report>>();
  readonly #verdicts = new Map<string, HdsVerdict>();
  /** Health checks (JSON) already encoded: null when it encodes, else why not. */
  #checked = new Map<string, string | null>();
  #closed = false;

  /** Reads the targets once; call `registerOn` to serve. */
  constructor(opts: HdsServerOptions) {
    this.#o = opts;
    this.#k = Math.max(1, Math.floor(opts.checkersPerEndpoint ?? 2));
    this.#intervalMs = Math.max(1, opts.intervalMs ?? 10_000);
    this.#now = opts.now ?? Date.now;
    const s = opts.stats.scope("hds");
    this.#stats = {
      streams_total: s.counter("streams_total"),
      streams_active: s.gauge("streams_active"),
      proxies: s.gauge("proxies"),
      reports: s.counter("reports"),
      reports_ignored: s.counter("reports_ignored"),
      specifiers_sent: s.counter("specifiers_sent"),
      verdict_changes: s.counter("verdict_changes"),
      bad_messages: s.counter("bad_messages"),
    };
    this.#loadTargets();
  }

  /** Registers StreamHealthCheck on `grpc`; returns this. */
  registerOn(grpc: GrpcServer): this {
    grpc.registerStream(HDS_METHOD, (call) => this.#open(call));
    return this;
  }

  /** Runs after the targets changed: re-reads them, re-assigns and sends each proxy whose share changed. */
  targetsChanged(): void {
    if (this.#closed) return;
    this.#loadTargets();
    this.#reassign();
  }

  /** The verdict on an endpoint of `service`; undefined when none of its checkers reported yet. */
  health(service: string, address: string, port: number): HdsVerdict | undefined {
    return this.#verdicts.get(endpointKey(service, address, port));
  }

  /** Connected proxies (node ids). */
  get proxies(): string[] {
    return [...this.#clients.keys()].sort();
  }

  /** The node ids checking an endpoint now. */
  checkers(service: string, address: string, port: number): string[] {
    return [...(this.#checkers.get(endpointKey(service, address, port)) ?? [])];
  }

  /** For a report page: per endpoint its checkers, their last reports and the verdict; per proxy its share. */
  status(): Record<string, unknown> {
    const iso = (ms: number) => new Date(ms).toISOString();
    const endpoints = [...this.#endpoints].map(([key, { service, ep }]) => ({
      service,
      address: ep.address,
      port: ep.port,
      ...(ep.zone ? { zone: ep.zone } : {}),
      checkers: this.#checkers.get(key) ?? [],
      reports: [...(this.#reports.get(key) ?? [])].map(([node, r]) => ({
        node,
        status: r.status,
        at: iso(r.at),
      })),
      verdict: this.#verdicts.get(key) ?? null,
    }));
    const proxies = [...this.#clients.values()].map((c) => ({
      node: c.node,
      cluster: c.cluster,
      connected_at: iso(c.since),
      endpoints: [...c.share.values()].reduce((n, eps) => n + eps.length, 0),
      services: Object.fromEntries([...c.share].map(([s, eps]) => [s, eps.length])),
      reports: c.reports,
      last_report_at: c.lastReportAt ? iso(c.lastReportAt) : null,
    }));
    return { checkers_per_endpoint: this.#k, interval_ms: this.#intervalMs, endpoints, proxies };
  }

  /** Ends every stream (UNAVAILABLE: proxies retry elsewhere); the gRPC server is the caller's to close. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const s of [...this.#streams]) s.call.end(GrpcStatus.UNAVAILABLE, "control plane shutting down");
    this.#streams.clear();
    this.#clients.clear();
    this.#stats.proxies.set(0);
  }

  // --- streams ---

  #open(call: GrpcStreamCall): void {
    if (this.#closed) return call.end(GrpcStatus.UNAVAILABLE, "control plane shutting down");
    const stream: Stream = { call };
    this.#streams.add(stream);
    this.#stats.streams_total.inc();
    this.#stats.streams_active.inc();
    call.onMessage = (m) => this.#message(stream, m);
    call.onHalfClose = () => call.end();
    call.onClose = () => this.#closeStream(stream);
  }

  #message(stream: Stream, bytes: Uint8Array): void {
    let msg: Record<string, unknown>;
    try {
      msg = decodeMessage(messageType(REQUEST_TYPE), bytes);
    } catch (e) {
      this.#stats.bad_messages.inc();
      return stream.call.end(GrpcStatus.INVALID_ARGUMENT, (e as Error).message);
    }
    const hello = msg.health_check_request as { node?: { id?: string; cluster?: string } } | undefined;
    if (hello !== undefined) {
      if (stream.client) return; // said again: nothing new
      const id = hello.node?.id ?? "";
      if (id === "") {
        this.#stats.bad_messages.inc();
        return stream.call.end(GrpcStatus.INVALID_ARGUMENT, "HealthCheckRequest needs node.id");
      }
      return this.#hello(stream, id, hello.node?.cluster ?? "");
    }
    const report = msg.endpoint_health_response as EndpointHealthResponse | undefined;
    if (report === undefined) return;
    if (!stream.client) {
      this.#stats.bad_messages.inc();
      return stream.call.end(GrpcStatus.INVALID_ARGUMENT, "The first message must be a HealthCheckRequest");
    }
    this.#report(stream.client, report);
  }

  #hello(stream: Stream, node: string, cluster: string): void {
    const old = this.#clients.get(node);
    if (old) {
      // the same proxy again (a reconnect the old stream has not noticed): the newer stream wins
      this.#dropClient(old);
      old.call.end(GrpcStatus.CANCELLED, `node ${node} opened a newer stream`);
    }
    const client: Client = {
      node,
      cluster,
      call: stream.call,
      since: this.#now(),
      share: new Map(),
      sent: "",
      reports: 0,
      lastReportAt: 0,
    };
    stream.client = client;
    this.#clients.set(node, client);
    this.#stats.proxies.set(this.#clients.size);
    this.#reassign(client);
  }

  #closeStream(stream: Stream): void {
    if (!this.#streams.delete(stream)) return;
    this.#stats.streams_active.dec();
    const c = stream.client;
    if (!c || this.#closed || this.#clients.get(c.node) !== c) return;
    this.#dropClient(c);
    this.#reassign();
  }

  /** Forgets a proxy and its reports (its share moves on the next reassign). */
  #dropClient(c: Client): void {
    this.#clients.delete(c.node);
    this.#stats.proxies.set(this.#clients.size);
    for (const reps of this.#reports.values()) reps.delete(c.node);
  }

  // --- assignment ---

  #loadTargets(): void {
    const targets = new Map<string, HdsTarget>();
    const endpoints = new Map<string, { service: string; ep: HdsEndpoint }>();
    const checked = new Map<string, string | null>();
    for (const t of this.#o.targets()) {
      // each distinct health check is encoded once per load (targets share a handful of them)
      const key = JSON.stringify(t.healthCheck);
      let bad = checked.get(key) ?? this.#checked.get(key);
      if (bad === undefined) {
        try {
          encodeMessage(messageType(HEALTH_CHECK_TYPE), t.healthCheck);
          bad = null;
        } catch (e) {
          bad = (e as Error).message;
        }
      }
      checked.set(key, bad);
      if (bad !== null) {
        log.warn(`HDS: the health check of service "${t.service}" cannot be sent: ${bad}`);
        continue;
      }
      targets.set(t.service, t);
      for (const ep of t.endpoints) {
        const key = endpointKey(t.service, ep.address, ep.port);
        if (!endpoints.has(key)) endpoints.set(key, { service: t.service, ep });
      }
    }
    this.#targets = targets;
    this.#endpoints = endpoints;
    this.#checked = checked;
  }

  /** Recomputes every share; sends specifiers that changed (and always to `fresh`, a proxy just connected). */
  #reassign(fresh?: Client): void {
    const nodes = [...this.#clients.keys()];
    const checkers = assignCheckers([...this.#endpoints.keys()], nodes, this.#k);
    const shares = new Map<string, Map<string, HdsEndpoint[]>>(nodes.map((n) => [n, new Map()]));
    for (const [key, { service, ep }] of this.#endpoints) {
      for (const n of checkers.get(key)!) {
        const share = shares.get(n)!;
        const list = share.get(service);
        if (list) list.push(ep);
        else share.set(service, [ep]);
      }
    }
    this.#checkers = checkers;
    for (const [key, reps] of this.#reports) {
      const cs = checkers.get(key);
      if (!cs) {
        this.#reports.delete(key);
        continue;
      }
      for (const n of reps.keys()) if (!cs.includes(n)) reps.delete(n);
    }
    for (const c of this.#clients.values()) {
      c.share = shares.get(c.node) ?? new Map();
      this.#sendSpecifier(c, c === fresh);
    }
    this.#updateVerdicts([...this.#verdicts.keys(), ...this.#reports.keys()]);
  }

  #sendSpecifier(c: Client, force: boolean): void {
    const spec = specifierJson(c.share, this.#targets, this.#intervalMs);
    const text = JSON.stringify(spec);
    if (!force && text === c.sent) return;
    let bytes: Uint8Array;
    try {
      bytes = encodeMessage(messageType(SPECIFIER_TYPE), spec);
    } catch (e) {
      log.error(`HDS: cannot encode the specifier of ${c.node}: ${(e as Error).message}`);
      return;
    }
    c.sent = text;
    if (c.call.send(bytes)) this.#stats.specifiers_sent.inc();
  }

  // --- reports and verdicts ---

  #report(c: Client, r: EndpointHealthResponse): void {
    c.reports++;
    c.lastReportAt = this.#now();
    this.#stats.reports.inc();
    const touched: string[] = [];
    for (const { service, address, port, status } of reportedHealth(r, c.share)) {
      const key = endpointKey(service, address, port);
      if (!this.#checkers.get(key)?.includes(c.node)) {
        this.#stats.reports_ignored.inc(); // not (or no longer) this proxy's to check
        continue;
      }
      let reps = this.#reports.get(key);
      if (status === "UNKNOWN") reps?.delete(c.node);
      else {
        if (!reps) this.#reports.set(key, reps = new Map());
        reps.set(c.node, { status, at: c.lastReportAt });
      }
      touched.push(key);
    }
    this.#updateVerdicts(touched);
  }

  /** Recomputes the verdicts of `keys`; tells listeners about the services whose verdicts changed. */
  #updateVerdicts(keys: Iterable<string>): void {
    const changed = new Set<string>();
    for (const key of new Set(keys)) {
      const before = this.#verdicts.get(key);
      const after = this.#verdict(key, before);
      if (after === before) continue;
      if (after === undefined) this.#verdicts.delete(key);
      else this.#verdicts.set(key, after);
      const service = this.#endpoints.get(key)?.service ?? key.slice(0, key.lastIndexOf("|"));
      changed.add(service);
      this.#stats.verdict_changes.inc();
    }
    if (changed.size === 0) return;
    for (const l of this.healthListeners) {
      try {
        l(changed);
      } catch (e) {
        log.warn(`HDS: a health listener failed: ${(e as Error).message}`);
      }
    }
  }

  #verdict(key: string, before: HdsVerdict | undefined): HdsVerdict | undefined {
    if (!this.#endpoints.has(key)) return undefined;
    const reps = this.#reports.get(key);
    let healthy = 0;
    let unhealthy = 0;
    for (const n of this.#checkers.get(key) ?? []) {
      const r = reps?.get(n);
      if (!r) continue;
      if (HEALTHY_VOTES.has(r.status)) healthy++;
      else unhealthy++;
    }
    if (healthy + unhealthy === 0) return undefined;
    if (healthy > unhealthy) return "HEALTHY";
    if (unhealthy > healthy) return "UNHEALTHY";
    return before;
  }
}
