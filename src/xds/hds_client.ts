/**
 * The proxy's HDS client (Envoy's HdsDelegate, bootstrap `hds_config`): on the main thread, opens
 * `HealthDiscoveryService/StreamHealthCheck` on a static cluster, says who it is (HealthCheckRequest: node and
 * the protocols it checks, HTTP and TCP), and runs the health checks each HealthCheckSpecifier lists against
 * the endpoints listed with them (hds_cluster.ts: nuncio's active health checker); every `interval` of the
 * specifier (1 s when absent, as Envoy; at least 100 ms) it sends an EndpointHealthResponse with each
 * endpoint's status, both per cluster and locality (`cluster_endpoints_health`) and in the flat legacy list
 * (`endpoints_health`). A new specifier replaces the checks (clusters with unchanged checks keep their hosts'
 * state); an invalid one is ignored and the previous checks go on. A failed stream is reopened with jittered
 * back-off (1 s .. 30 s, as Envoy) and checks go on meanwhile, until the next specifier; `close` stops
 * everything.
 *
 * Where nuncio differs from Envoy: checks run every `interval` of their HealthCheck (Envoy's HdsClusters never
 * carry traffic, so Envoy falls back to no_traffic_interval); an endpoint not checked yet is reported UNKNOWN
 * (Envoy: UNHEALTHY) and a degraded one DEGRADED (Envoy: UNHEALTHY); transport_socket_matches,
 * upstream_bind_config and a check's event_log_path are ignored (checks use plain TCP, nothing is logged).
 * Stats: `hds_delegate.requests` (specifiers received), `responses` (messages sent), `errors` (failed streams
 * and rejected specifiers).
 */
import { type Clock, systemClock, type TimerHandle } from "../common/clock.ts";
import { Logger } from "../common/log.ts";
import { SharedArena } from "../common/shared_arena.ts";
import { duration } from "../config/common.ts";
import type { ApiConfigSource } from "../config/config_source.ts";
import type { Counter, Scope } from "../stats/store.ts";
import { healthCheckSchema } from "../upstream/health/config.ts";
import { encodeMessage } from "./codec/encode.ts";
import { decodeMessage } from "./codec/proto_json.ts";
import { messageType } from "./codec/root.ts";
import { HdsCluster, type HdsClusterSpec, type HealthStatusName, type Locality } from "./hds_cluster.ts";
import { ServiceStream, type ServiceStreamDeps } from "./service_stream.ts";
import { errorText } from "./subscription.ts";
import type { XdsNode } from "./types.ts";

const log = new Logger("upstream");

/** The gRPC method. */
export const HDS_STREAM_METHOD = "/envoy.service.health.v3.HealthDiscoveryService/StreamHealthCheck";
/** Envoy's HDS retry bounds. */
export const HDS_BACKOFF = { baseMs: 1000, maxMs: 30_000 } as const;
/** The report interval when a specifier has none (Envoy's). */
export const DEFAULT_HDS_INTERVAL_MS = 1000;
/** The shortest report interval honoured (a 0 s interval would report in a loop). */
export const MIN_HDS_INTERVAL_MS = 100;

const REQUEST_TYPE = "envoy.service.health.v3.HealthCheckRequestOrEndpointHealthResponse";
const SPECIFIER_TYPE = "envoy.service.health.v3.HealthCheckSpecifier";

/** What the HDS client needs. */
export interface HdsClientDeps extends ServiceStreamDeps {
  /** The node sent in the HealthCheckRequest. */
  node: XdsNode;
  /** The root stats scope (`hds_delegate.` is added). */
  stats: Scope;
  /** Where host health slots live (default: an arena of its own). */
  arena?: SharedArena;
}

/** See the file comment. */
export class HdsClient {
  readonly #deps: HdsClientDeps;
  readonly #stream: ServiceStream;
  readonly #clock: Clock;
  readonly #arena: SharedArena;
  readonly #stats: { requests: Counter; responses: Counter; errors: Counter };
  #clusters = new Map<string, HdsCluster>();
  #intervalMs = 0;
  #timer: TimerHandle | undefined;
  #generation = 0;
  #closed = false;

  /** Makes the client; `start` opens the stream. */
  constructor(source: ApiConfigSource, deps: HdsClientDeps) {
    this.#deps = deps;
    this.#clock = deps.clock ?? systemClock;
    this.#arena = deps.arena ?? SharedArena.create({ capacity: 16_384, bytes: 4 * 1024 * 1024 });
    const s = deps.stats.scope("hds_delegate");
    this.#stats = {
      requests: s.counter("requests"),
      responses: s.counter("responses"),
      errors: s.counter("errors"),
    };
    this.#stream = new ServiceStream(source, {
      path: HDS_STREAM_METHOD,
      label: "HDS",
      backoff: HDS_BACKOFF,
      deps,
      handler: {
        opened: () => this.#hello(),
        message: (m) => this.#specifier(m),
        ended: () => {
          this.#stats.errors.inc();
          this.#stopReports();
        },
      },
    });
  }

  /** Opens the stream (and keeps reopening it until `close`). */
  start(): void {
    this.#stream.start();
  }

  /** True while the stream is open. */
  get connected(): boolean {
    return this.#stream.connected;
  }

  /** The report interval of the current specifier (0 before the first). */
  get intervalMs(): number {
    return this.#intervalMs;
  }

  /** The clusters checked now with each endpoint's status (tests, debugging). */
  checks(): { cluster: string; endpoints: { address: string; port: number; status: HealthStatusName }[] }[] {
    return [...this.#clusters.values()].map((c) => ({
      cluster: c.name,
      endpoints: c.report().locality_endpoints_health.flatMap((l) =>
        (l.endpoints_health as { endpoint: Endpoint; health_status: HealthStatusName }[]).map((e) => ({
          address: e.endpoint.address.socket_address.address,
          port: e.endpoint.address.socket_address.port_value,
          status: e.health_status,
        }))
      ),
    }));
  }

  /** The EndpointHealthResponse that would be sent now (JSON). */
  healthResponse(): Record<string, unknown> {
    const clusters = [...this.#clusters.values()].map((c) => c.report());
    const flat = clusters.flatMap((c) =>
      c.locality_endpoints_health.flatMap((l) => l.endpoints_health as unknown[])
    );
    return { endpoint_health_response: { endpoints_health: flat, cluster_endpoints_health: clusters } };
  }

  /** Stops the stream, the reports and every check. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#stopReports();
    for (const c of this.#clusters.values()) c.close();
    this.#clusters.clear();
    await this.#stream.close();
  }

  #hello(): void {
    const hello = {
      health_check_request: {
        node: this.#deps.node,
        capability: { health_check_protocols: ["HTTP", "TCP"] },
      },
    };
    if (this.#stream.send(encodeMessage(messageType(REQUEST_TYPE), hello))) this.#stats.responses.inc();
  }

  #specifier(bytes: Uint8Array): void {
    if (this.#closed) return;
    this.#stats.requests.inc();
    let specs: HdsClusterSpec[];
    let intervalMs: number;
    try {
      const json = decodeMessage(messageType(SPECIFIER_TYPE), bytes);
      specs = parseSpecifier(json);
      intervalMs = json.interval === undefined ? DEFAULT_HDS_INTERVAL_MS : duration.parse(json.interval);
    } catch (e) {
      this.#stats.errors.inc();
      log.warn(`HDS: ignoring a HealthCheckSpecifier: ${errorText(e)}`);
      return;
    }
    const next = new Map<string, HdsCluster>();
    for (const spec of specs) {
      const old = this.#clusters.get(spec.name);
      if (old && old.checksKey === spec.checksKey) {
        old.setEndpoints(spec.localities);
        this.#clusters.delete(spec.name);
        next.set(spec.name, old);
      } else {
        next.set(
          spec.name,
          new HdsCluster(spec, {
            arena: this.#arena,
            scope: this.#deps.stats.scope("hds_delegate"),
            clock: this.#clock,
            random: this.#deps.random ?? Math.random,
            variant: String(++this.#generation),
          }),
        );
      }
    }
    for (const c of this.#clusters.values()) c.close();
    this.#clusters = next;
    for (const c of next.values()) c.start();
    const ms = Math.max(MIN_HDS_INTERVAL_MS, intervalMs);
    if (ms !== this.#intervalMs || this.#timer === undefined) {
      this.#intervalMs = ms;
      this.#armReport();
    }
  }

  #armReport(): void {
    if (this.#timer !== undefined) this.#clock.clearTimer(this.#timer);
    this.#timer = this.#clock.setTimer(() => {
      this.#timer = undefined;
      if (this.#closed) return;
      const msg = encodeMessage(messageType(REQUEST_TYPE), this.healthResponse());
      if (this.#stream.send(msg)) this.#stats.responses.inc();
      this.#armReport();
    }, this.#intervalMs);
  }

  #stopReports(): void {
    if (this.#timer !== undefined) this.#clock.clearTimer(this.#timer);
    this.#timer = undefined;
    this.#intervalMs = 0;
  }
}

interface Endpoint {
  address: { socket_address: { address: string; port_value: number } };
}

/** The ClusterHealthChecks of a specifier, validated; throws naming the first problem. */
export function parseSpecifier(json: Record<string, unknown>): HdsClusterSpec[] {
  const out: HdsClusterSpec[] = [];
  const seen = new Set<string>();
  const list = (json.cluster_health_checks ?? []) as Record<string, unknown>[];
  list.forEach((chc, i) => {
    const at = `cluster_health_checks[${i}]`;
    const name = typeof chc.cluster_name === "string" ? chc.cluster_name : "";
    if (name === "") throw new Error(`${at}.cluster_name: must be set`);
    if (seen.has(name)) throw new Error(`${at}.cluster_name: "${name}" is listed twice`);
    seen.add(name);
    const raw = (chc.health_checks ?? []) as unknown[];
    const checks = raw.map((hc, j) => {
      const r = healthCheckSchema.safeParse(hc);
      if (r.success) return r.data;
      const issue = r.error.issues[0];
      const path = [`${at}.health_checks[${j}]`, ...issue.path.map(String)].join(".");
      throw new Error(`${path}: ${issue.message}`);
    });
    const localities = ((chc.locality_endpoints ?? []) as { locality?: Locality; endpoints?: unknown[] }[])
      .map(
        (l, li) => ({
          ...(l.locality ? { locality: l.locality } : {}),
          endpoints: (l.endpoints ?? []).map((e, ei) => {
            const sa = (e as Partial<Endpoint>).address?.socket_address;
            if (!sa?.address || !(Number(sa.port_value) > 0)) {
              throw new Error(
                `${at}.locality_endpoints[${li}].endpoints[${ei}]: needs a socket_address with a port`,
              );
            }
            return { address: sa.address, port: Number(sa.port_value) };
          }),
        }),
      );
    out.push({ name, checks, checksKey: JSON.stringify(raw), localities });
  });
  return out;
}
