/**
 * The control plane's benchmarks: a generated mesh of 1,000 service manifests (each with 5 upstreams drawn
 * deterministically from the others, some with knobs, a health check, some with a database or a cache), the
 * defaults file and an edge file routing to 50 of them.
 *
 * 1. Snapshot build, in this process: `loadInputs` (read and validate every file), `build()` (every node's
 *    resources) and encoding (`SnapshotCache.setBuild` on a fresh cache with an in-memory EndpointSource of 3
 *    hosts per service: every resource and every ClusterLoadAssignment to protobuf), `--build-rounds` times,
 *    medians.
 * 2. `nuncio control-plane` as a subprocess (in-process registry, inputs watched every 200 ms), 3 hosts
 *    registered per service through its v1 API (3,000 hosts), then 100 simulated proxies in this process, each
 *    an ADS state-of-the-world stream (nuncio's own gRPC stream client and discovery codecs) with a distinct
 *    node.id and node.cluster one of the services: wildcard CDS and LDS, then EDS for the EDS clusters
 *    received and RDS for the route names of the listeners received, every response ACKed, as Envoy does.
 *    Initial convergence: streams opened -> every proxy has ACKed CDS, EDS (the names it asked for), LDS and
 *    RDS.
 * 3. Manifest change: the defaults file's `connect_timeout` is changed (write then rename, as config tools do),
 *    which touches every node's clusters; per proxy, the time from the rename to the arrival of the CDS
 *    response whose `local_service` carries the new value. It includes the control plane's file watch (a
 *    poll every 200 ms: 0-200 ms of it), the re-read of all 1,002 inputs, the build, the encoding and the
 *    pushes. `--changes` successive changes; p50/p99/max over all proxies and changes. Target: p99 <= 1 s.
 * 4. RSS (VmRSS of /proc/<pid>/status) of the control plane with 1,000 services, 3,000 hosts and 100 proxies
 *    connected, once settled after convergence; also after start-up, after registration and after the changes,
 *    and its peak (VmHWM).
 *
 *   deno run -A bench/control_plane_bench.ts [--services 1000] [--proxies 100] [--hosts-per-service 3]
 *     [--build-rounds 5] [--changes 3] [--cpu-prof] [--keep] [--nuncio-bin PATH]
 *
 * `--cpu-prof` runs the control plane under `deno run --cpu-prof` and keeps its .cpuprofile in the temp dir
 * (implies `--keep`).
 */
import "../src/config/zod_setup.ts";
import { build } from "../src/control_plane/builder.ts";
import type { EndpointSource } from "../src/control_plane/endpoints.ts";
import { loadInputs } from "../src/control_plane/inputs.ts";
import { SnapshotCache } from "../src/control_plane/snapshot.ts";
import type { HostRecord } from "../src/discovery/types.ts";
import { type GrpcStreamCall, openGrpcStream } from "../src/grpc/stream_client.ts";
import { decodeAny, decodeDiscoveryResponse, encodeDiscoveryRequest } from "../src/xds/codec/mod.ts";
import type { RawDiscoveryResponse } from "../src/xds/codec/discovery.ts";
import { type DiscoveryRequest, TYPE_URLS } from "../src/xds/types.ts";
import { findFreePorts, type Managed, median, Supervisor, tailFile } from "./lib.ts";

const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

const CDS = TYPE_URLS.cluster;
const EDS = TYPE_URLS.endpoint;
const LDS = TYPE_URLS.listener;
const RDS = TYPE_URLS.route;
const ADS_PATH = "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources";

/** Options of runControlPlaneBench. */
export interface ControlPlaneBenchOptions {
  /** Service manifests generated (default 1000). */
  services: number;
  /** Simulated proxies on ADS streams (default 100). */
  proxies: number;
  /** Hosts registered per service (default 3). */
  hostsPerService: number;
  /** Rounds of the in-process snapshot build (median reported). */
  buildRounds: number;
  /** Successive defaults changes measured. */
  changes: number;
  /** `deno run main.ts` unless a compiled binary is given. */
  nuncioBin?: string;
  /** Profile the control plane subprocess (`--cpu-prof`), keep the profile. */
  cpuProf?: boolean;
  /** Keep the temp dir (manifests, log, profile). */
  keep?: boolean;
}

/** Default options (the issue's sizes). */
export const CONTROL_PLANE_DEFAULTS: ControlPlaneBenchOptions = {
  services: 1000,
  proxies: 100,
  hostsPerService: 3,
  buildRounds: 5,
  changes: 3,
};

/** The target of the change line, milliseconds. */
export const CONTROL_PLANE_P99_TARGET_MS = 1000;

/** Medians of the in-process snapshot build. */
export interface SnapshotBuildResult {
  loadMs: number;
  buildMs: number;
  encodeMs: number;
  rounds: number;
  nodeClusters: number;
  /** Resources of every node (listeners, API listeners, routes, clusters) plus the CLAs. */
  resources: number;
  /** Their encoded size. */
  encodedBytes: number;
}

/** Everything measured; a part that could not be measured is absent and `error` says why. */
export interface ControlPlaneBenchResult {
  services: number;
  proxies: number;
  hosts: number;
  snapshot?: SnapshotBuildResult;
  /** Control plane process: spawn -> /healthcheck answers (first read and build included). */
  startMs?: number;
  /** All hosts registered (v1 API). */
  registerMs?: number;
  /** Streams opened -> every proxy converged (max), and the per-proxy p50/p99. */
  initial?: {
    maxMs: number;
    p50Ms: number;
    p99Ms: number;
    converged: number;
    endpoints: number;
    wantEndpoints: number;
  };
  /** Defaults change -> the change's CDS response at each proxy: every sample, and each change's p99. */
  change?: {
    samples: number[];
    perChangeP99: number[];
    missed: number;
    /** The control plane's own build_ms per change (file stat, read, build, encode). */
    reloadMs?: number[];
    /** xDS responses the control plane sent per proxy per change (1: only the CDS that changed). */
    responsesPerProxy?: number;
  };
  /** Control plane VmRSS, KiB. */
  rss?: {
    startKiB: number;
    hostsKiB: number;
    convergedKiB: number;
    afterChangesKiB: number;
    peakKiB: number;
  };
  /** Counters of the control plane at the end. */
  stats?: Record<string, number>;
  /** Protocol problems seen by the simulated proxies. */
  proxyErrors: string[];
  /** Where the .cpuprofile (or the kept files) are. */
  keptDir?: string;
  error?: string;
}

// ---------------------------------------------------------------------------------------------------------
// the generated mesh

function svc(i: number): string {
  return `svc-${String(i).padStart(4, "0")}`;
}

/** mulberry32: a small deterministic PRNG. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** One generated service: its upstreams (service indices) and whether it has a database / cache. */
interface GenService {
  name: string;
  upstreams: number[];
  database: boolean;
  cache: boolean;
}

function meshPlan(n: number): GenService[] {
  const rand = prng(0x5eed);
  const out: GenService[] = [];
  const want = Math.min(5, n - 1);
  for (let i = 0; i < n; i++) {
    const ups = new Set<number>();
    while (ups.size < want) {
      const j = Math.floor(rand() * n);
      if (j !== i) ups.add(j);
    }
    out.push({ name: svc(i), upstreams: [...ups], database: i % 4 === 0, cache: i % 7 === 0 });
  }
  return out;
}

function manifestYaml(s: GenService, i: number): string {
  const lines = [
    `# generated by bench/control_plane_bench.ts`,
    `service: ${s.name}`,
    `owner: team-${i % 40}`,
    `port: ${8000 + (i % 1000)}`,
    `protocol: ${i % 10 === 0 ? "grpc" : "http1"}`,
    `health_check:`,
    `  path: /healthz`,
    `upstreams:`,
  ];
  s.upstreams.forEach((u, k) => {
    lines.push(`  - service: ${svc(u)}`);
    if ((i + k) % 3 === 0) {
      lines.push(`    timeout: ${1 + ((i + k) % 5)}s`, `    retries: ${(i + k) % 3}`);
    }
    if ((i + k) % 4 === 0) lines.push(`    circuit_breakers: { max_requests: ${100 + (i % 9) * 100} }`);
    if ((i + k) % 5 === 0) {
      lines.push(`    outlier_detection: { consecutive_5xx: 3, base_ejection_time: 10s }`);
    }
    if ((i + k) % 11 === 0) lines.push(`    rate_limit: { requests_per_second: 200 }`);
  });
  if (s.database) lines.push(`databases:`, `  - service: ${s.name}-db`, `    port: 5432`);
  if (s.cache) lines.push(`caches:`, `  - service: ${s.name}-cache`, `    port: 6379`);
  return lines.join("\n") + "\n";
}

/** The defaults file, with `connect_timeout` the value the change rounds rewrite. */
function defaultsYaml(connectTimeout: string): string {
  return `# generated by bench/control_plane_bench.ts (after config/mesh/defaults.yaml)
ingress_port: 9211
egress_port: 9001
connect_timeout: ${connectTimeout}
retry_on: 5xx,connect-failure,refused-stream
health_check:
  interval: 5s
  timeout: 1s
  unhealthy_threshold: 2
  healthy_threshold: 1
limits:
  timeout: { default: 15s, min: 100ms, max: 60s }
  per_try_timeout: { max: 30s }
  retries: { default: 1, max: 3 }
  max_connections: { default: 1024, max: 10000 }
  max_pending_requests: { default: 1024, max: 10000 }
  max_requests: { default: 1024, max: 10000 }
  max_retries: { default: 3, max: 10 }
  consecutive_5xx: { default: 5, min: 2, max: 100 }
  base_ejection_time: { default: 30s, min: 1s, max: 5m }
  max_ejection_percent: { default: 10, max: 50 }
  requests_per_second: { min: 1, max: 100000 }
hds:
  checkers_per_endpoint: 2
  interval: 5s
`;
}

function edgeYaml(n: number): string {
  const lines = [
    "# generated by bench/control_plane_bench.ts",
    "node_cluster: edge",
    "port: 8080",
    "routes:",
  ];
  const step = Math.max(1, Math.floor(n / 50));
  for (let i = 0; i < n && lines.length < 4 + 50 * 4; i += step) {
    lines.push(`  - prefix: /api/${svc(i)}/`, `    service: ${svc(i)}`, `    prefix_rewrite: /`);
    if (i % 3 === 0) lines.push(`    timeout: 5s`);
  }
  return lines.join("\n") + "\n";
}

interface MeshFiles {
  manifests: string;
  defaults: string;
  edge: string;
  plan: GenService[];
}

async function writeMesh(dir: string, n: number): Promise<MeshFiles> {
  const plan = meshPlan(n);
  const manifests = `${dir}/manifests`;
  await Deno.mkdir(manifests, { recursive: true });
  await Promise.all(
    plan.map((s, i) => Deno.writeTextFile(`${manifests}/${s.name}.yaml`, manifestYaml(s, i))),
  );
  const defaults = `${dir}/defaults.yaml`;
  await Deno.writeTextFile(defaults, defaultsYaml("1s"));
  const edge = `${dir}/edge.yaml`;
  await Deno.writeTextFile(edge, edgeYaml(n));
  return { manifests, defaults, edge, plan };
}

// ---------------------------------------------------------------------------------------------------------
// 1. snapshot build in this process

function fakeHosts(service: string, count: number): HostRecord[] {
  return Array.from({ length: count }, (_, h) => ({
    service,
    ip_address: `10.${h}.0.${1 + (service.length % 250)}`,
    port: 8080,
    revision: "bench",
    service_repo_name: service,
    last_check_in: Date.now(),
    tags: { az: `az-${h}` },
  }));
}

/** An EndpointSource answering `count` fixed hosts for any service. */
class FixedHosts implements EndpointSource {
  readonly changeListeners = new Set<(service: string | null) => void>();
  readonly #count: number;
  constructor(count: number) {
    this.#count = count;
  }
  hosts(service: string): Promise<readonly HostRecord[]> {
    return Promise.resolve(fakeHosts(service, this.#count));
  }
  services(): Promise<string[]> {
    return Promise.resolve([]);
  }
  watch(): void {}
  close(): Promise<void> {
    return Promise.resolve();
  }
}

async function snapshotBuild(files: MeshFiles, o: ControlPlaneBenchOptions): Promise<SnapshotBuildResult> {
  const load: number[] = [];
  const builds: number[] = [];
  const encode: number[] = [];
  let nodeClusters = 0;
  let resources = 0;
  let encodedBytes = 0;
  for (let r = 0; r < o.buildRounds; r++) {
    const t0 = performance.now();
    const set = await loadInputs(files);
    const t1 = performance.now();
    if (set.errors.length > 0 || !set.defaults) {
      const e = set.errors[0];
      throw new Error(
        `generated inputs rejected: ${e ? `${e.file}:${e.line}: ${e.path}: ${e.message}` : "?"}`,
      );
    }
    const b = build({
      defaults: set.defaults.value,
      manifests: new Map([...set.manifests].map(([k, v]) => [k, v.value])),
      edge: set.edge?.value,
    });
    const t2 = performance.now();
    const cache = new SnapshotCache(new FixedHosts(o.hostsPerService));
    await cache.setBuild(b);
    const t3 = performance.now();
    load.push(t1 - t0);
    builds.push(t2 - t1);
    encode.push(t3 - t2);
    if (r === 0) {
      // what was encoded: every node's resources, each service's CLA once
      nodeClusters = b.nodes.size;
      for (const [cluster] of b.nodes) {
        for (const type of [LDS, RDS, CDS]) {
          for (const e of (await cache.resolve({ id: "n", cluster }, type, null)).values()) {
            resources++;
            encodedBytes += e.any.value.length;
          }
        }
        const api = b.nodes.get(cluster)!.apiListeners.map((l) => l.name as string);
        for (const e of (await cache.resolve({ id: "n", cluster }, LDS, api)).values()) {
          resources++;
          encodedBytes += e.any.value.length;
        }
      }
      for (const s of cache.services()) {
        const any = await cache.resolve({ id: "n", cluster: anyUser(b, s) }, EDS, [s]);
        for (const e of any.values()) {
          resources++;
          encodedBytes += e.any.value.length;
        }
      }
    }
    await cache.close();
  }
  return {
    loadMs: median(load),
    buildMs: median(builds),
    encodeMs: median(encode),
    rounds: o.buildRounds,
    nodeClusters,
    resources,
    encodedBytes,
  };
}

function anyUser(b: ReturnType<typeof build>, service: string): string {
  for (const [cluster, n] of b.nodes) if (n.endpoints.includes(service)) return cluster;
  return "";
}

// ---------------------------------------------------------------------------------------------------------
// 2. simulated proxies

type Json = Record<string, unknown>;

/** One type's state-of-the-world subscription on a simulated proxy's stream. */
interface SubState {
  /** Names asked for; null: wildcard. */
  names: string[] | null;
  version: string;
  nonce: string;
  responses: number;
  /** The latest response holds every name asked for (always true for a wildcard). */
  complete: boolean;
}

function durationMs(v: unknown): number | undefined {
  const m = typeof v === "string" ? /^(\d+(?:\.\d+)?)s$/.exec(v) : null;
  return m ? Math.round(Number(m[1]) * 1000) : undefined;
}

function sameList(a: readonly string[] | null, b: readonly string[]): boolean {
  return a !== null && a.length === b.length && a.every((x, i) => x === b[i]);
}

/** An Envoy-like ADS (state of the world) client: see the file comment. */
class SimProxy {
  readonly id: string;
  readonly cluster: string;
  readonly subs = new Map<string, SubState>();
  /** When it first held CDS, EDS, LDS and RDS, all ACKed (performance.now()). */
  convergedAt: number | undefined;
  /** connect_timeout of `local_service` in the latest CDS response, and when it arrived. */
  connectTimeoutMs: number | undefined;
  /** Endpoints in the latest EDS response. */
  endpoints = 0;
  readonly errors: string[] = [];
  readonly #call: GrpcStreamCall;
  #nodeSent = false;
  #closing = false;
  #waiters: { ms: number; resolve: (at: number) => void }[] = [];
  #onConverged: () => void;
  done: Promise<void> = Promise.resolve();

  constructor(call: GrpcStreamCall, id: string, cluster: string, onConverged: () => void) {
    this.#call = call;
    this.id = id;
    this.cluster = cluster;
    this.#onConverged = onConverged;
  }

  /** Subscribes CDS and LDS (wildcard), then reads responses until the stream ends. */
  start(): void {
    this.#subscribe(CDS, null);
    this.#subscribe(LDS, null);
    this.done = this.#loop();
  }

  /** Resolves with the arrival time of the CDS response whose local_service has this connect_timeout. */
  waitConnectTimeout(ms: number): Promise<number> {
    return new Promise((resolve) => this.#waiters.push({ ms, resolve }));
  }

  async close(): Promise<void> {
    this.#closing = true;
    await this.#call.close();
    await this.done;
  }

  #send(type: string, st: SubState): void {
    const req: DiscoveryRequest = { type_url: type, resource_names: st.names ?? [] };
    if (st.version) req.version_info = st.version;
    if (st.nonce) req.response_nonce = st.nonce;
    if (!this.#nodeSent) {
      req.node = { id: this.id, cluster: this.cluster, user_agent_name: "bench-sim-envoy" };
      this.#nodeSent = true;
    }
    if (!this.#call.write(encodeDiscoveryRequest(req)) && !this.#closing) {
      this.errors.push(`${this.id}: write on a closed stream`);
    }
  }

  /** A new subscription, or new names for one (carrying the type's last version and nonce, as Envoy). */
  #subscribe(type: string, names: string[] | null): void {
    let st = this.subs.get(type);
    if (!st) this.subs.set(type, st = { names, version: "", nonce: "", responses: 0, complete: false });
    st.names = names;
    st.complete = false;
    this.#send(type, st);
  }

  async #loop(): Promise<void> {
    try {
      for (;;) {
        const msg = await this.#call.read();
        if (msg === null) break;
        this.#handle(decodeDiscoveryResponse(msg));
      }
      if (!this.#closing) this.errors.push(`${this.id}: the control plane ended the stream`);
    } catch (e) {
      if (!this.#closing) this.errors.push(`${this.id}: ${(e as Error).message}`);
    }
  }

  #handle(res: RawDiscoveryResponse): void {
    const at = performance.now();
    const st = this.subs.get(res.type_url);
    if (!st) {
      this.errors.push(`${this.id}: response of unsubscribed type ${res.type_url}`);
      return;
    }
    st.version = res.version_info;
    st.nonce = res.nonce;
    st.responses++;
    st.complete = st.names === null || res.resources.length === st.names.length;
    let follow: [string, string[]] | undefined;
    try {
      const decoded = res.resources.map((a) => decodeAny(a.type_url, a.value) as Json);
      if (res.type_url === CDS) {
        const eds: string[] = [];
        for (const c of decoded) {
          if (c.name === "local_service") this.connectTimeoutMs = durationMs(c.connect_timeout);
          if (c.type === "EDS") {
            const cfg = c.eds_cluster_config as { service_name?: string } | undefined;
            eds.push(cfg?.service_name || (c.name as string));
          }
        }
        eds.sort();
        if (!sameList(this.subs.get(EDS)?.names ?? null, eds)) follow = [EDS, eds];
      } else if (res.type_url === LDS) {
        const routes = new Set<string>();
        for (const l of decoded) {
          for (const fc of (l.filter_chains as Json[] | undefined) ?? []) {
            for (const f of (fc.filters as Json[] | undefined) ?? []) {
              const rds = (f.typed_config as Json | undefined)?.rds as
                | { route_config_name?: string }
                | undefined;
              if (rds?.route_config_name) routes.add(rds.route_config_name);
            }
          }
        }
        const names = [...routes].sort();
        if (!sameList(this.subs.get(RDS)?.names ?? null, names)) follow = [RDS, names];
      } else if (res.type_url === EDS) {
        let n = 0;
        for (const cla of decoded) {
          for (const loc of (cla.endpoints as Json[] | undefined) ?? []) {
            n += ((loc.lb_endpoints as unknown[] | undefined) ?? []).length;
          }
        }
        this.endpoints = n;
      }
    } catch (e) {
      this.errors.push(`${this.id}: cannot decode ${res.type_url}: ${(e as Error).message}`);
    }
    this.#send(res.type_url, st); // ACK
    if (follow) this.#subscribe(follow[0], follow[1]);
    if (this.convergedAt === undefined && this.#converged()) {
      this.convergedAt = at;
      this.#onConverged();
    }
    if (res.type_url === CDS && this.#waiters.length > 0) {
      this.#waiters = this.#waiters.filter((w) => {
        if (w.ms !== this.connectTimeoutMs) return true;
        w.resolve(at);
        return false;
      });
    }
  }

  #converged(): boolean {
    for (const t of [CDS, LDS, EDS, RDS]) {
      const st = this.subs.get(t);
      if (!st || st.responses === 0 || !st.complete) return false;
    }
    return true;
  }
}

// ---------------------------------------------------------------------------------------------------------
// 3. the control plane subprocess

/** VmRSS and VmHWM of a process, KiB (reading /proc needs --allow-all under Deno: else through cat). */
async function procMemKiB(pid: number): Promise<{ rss: number; hwm: number }> {
  let text: string;
  try {
    text = await Deno.readTextFile(`/proc/${pid}/status`);
  } catch {
    const out = await new Deno.Command("cat", {
      args: [`/proc/${pid}/status`],
      stdout: "piped",
      stderr: "null",
    })
      .output();
    text = new TextDecoder().decode(out.stdout);
  }
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)`, "m").exec(text)?.[1] ?? NaN);
  return { rss: field("VmRSS"), hwm: field("VmHWM") };
}

/** VmRSS once two samples 500 ms apart differ by less than 1% (at most `maxMs`). */
async function settledRss(pid: number, maxMs = 4000): Promise<number> {
  let last = (await procMemKiB(pid)).rss;
  const end = Date.now() + maxMs;
  while (Date.now() < end) {
    await sleep(500);
    const now = (await procMemKiB(pid)).rss;
    if (Math.abs(now - last) <= last * 0.01) return now;
    last = now;
  }
  return last;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function waitHealthy(base: string, proc: Managed, ms: number): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    if (proc.exited()) throw new Error(`the control plane exited: ${tailFile(proc.logPath, 600)}`);
    try {
      const r = await fetch(`${base}/healthcheck`);
      await r.body?.cancel();
      if (r.ok) return;
    } catch {
      // not yet
    }
    if (Date.now() > end) throw new Error(`the control plane did not come up in ${ms} ms`);
    await sleep(50);
  }
}

/** The control plane's own figures from /stats/prometheus: `control_plane.x.y` as `x_y` (histograms: `_sum`, `_count`). */
async function readStats(base: string): Promise<Record<string, number>> {
  const r = await fetch(`${base}/stats/prometheus`);
  const text = await r.text();
  const out: Record<string, number> = {};
  for (const line of text.split("\n")) {
    const m = /^envoy_control_plane_(\w+) (\S+)$/.exec(line);
    if (m) out[m[1]] = Number(m[2]);
  }
  return out;
}

async function register(base: string, plan: GenService[], perService: number): Promise<void> {
  const jobs: [string, string][] = [];
  plan.forEach((s, i) => {
    for (let h = 0; h < perService; h++) {
      jobs.push([
        s.name,
        JSON.stringify({
          ip: `10.${h}.${(i >> 8) & 255}.${i & 255}`,
          port: 8080,
          revision: "bench",
          service_repo_name: s.name,
          tags: { az: `az-${h}`, region: "r1" },
        }),
      ]);
    }
  });
  let next = 0;
  const failures: string[] = [];
  await Promise.all(Array.from({ length: 16 }, async () => {
    const client = Deno.createHttpClient({});
    try {
      while (next < jobs.length) {
        const [service, body] = jobs[next++];
        const r = await fetch(`${base}/v1/registration/${service}`, { method: "POST", body, client });
        const text = await r.text();
        if (!r.ok) failures.push(`${service}: HTTP ${r.status} ${text.trim()}`);
      }
    } finally {
      client.close();
    }
  }));
  if (failures.length > 0) throw new Error(`${failures.length} registrations failed, first: ${failures[0]}`);
}

function pct(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

/** Starts `nuncio control-plane` on the mesh; resolves once /healthcheck answers and the inputs are clean. */
async function startControlPlaneProcess(
  sup: Supervisor,
  dir: string,
  files: MeshFiles,
  o: ControlPlaneBenchOptions,
): Promise<{ proc: Managed; base: string; grpcPort: number; startMs: number; nodeClusters: number }> {
  const [port, grpcPort] = findFreePorts(2);
  const args = [
    "control-plane",
    ...["--manifests", files.manifests, "--defaults", files.defaults, "--edge", files.edge],
    ...["--port", String(port), "--grpc-port", String(grpcPort), "--host", "127.0.0.1"],
    ...["--watch-interval", "200ms"],
  ];
  const prof = o.cpuProf ? ["--cpu-prof", `--cpu-prof-dir=${dir}`] : [];
  const cmd = o.nuncioBin ?? Deno.execPath();
  const full = o.nuncioBin ? args : ["run", "-A", ...prof, `${ROOT}/main.ts`, ...args];
  const base = `http://127.0.0.1:${port}`;
  const t0 = performance.now();
  const proc = sup.spawn("control-plane", cmd, full, { logPath: `${dir}/control-plane.log` });
  await waitHealthy(base, proc, 60_000);
  const startMs = performance.now() - t0;
  const inputs = await (await fetch(`${base}/inputs`)).json() as {
    errors: string[];
    node_clusters: string[];
  };
  if (inputs.errors.length > 0) throw new Error(`the control plane rejected inputs: ${inputs.errors[0]}`);
  return { proc, base, grpcPort, startMs, nodeClusters: inputs.node_clusters.length };
}

/** Resolves with `p`'s value, or `undefined` after `ms`. */
async function within<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([p, new Promise<undefined>((r) => timer = setTimeout(() => r(undefined), ms))]);
  } finally {
    clearTimeout(timer);
  }
}

/** Opens one ADS stream per pick (node.cluster = that service); resolves once all converged (or 30 s). */
async function connectProxies(
  grpcPort: number,
  clusters: string[],
  proxies: SimProxy[],
): Promise<NonNullable<ControlPlaneBenchResult["initial"]>> {
  let converged = 0;
  const { promise: all, resolve: onAll } = Promise.withResolvers<true>();
  const t0 = performance.now();
  const opened = await Promise.allSettled(
    clusters.map(() => openGrpcStream({ host: "127.0.0.1", port: grpcPort }, ADS_PATH)),
  );
  const failed = opened.find((r) => r.status === "rejected");
  if (failed) {
    await Promise.all(opened.map((r) => r.status === "fulfilled" ? r.value.close() : undefined));
    throw failed.reason;
  }
  const calls = opened.map((r) => (r as PromiseFulfilledResult<GrpcStreamCall>).value);
  clusters.forEach((cluster, k) => {
    const p = new SimProxy(calls[k], `bench-proxy-${k}`, cluster, () => {
      if (++converged === clusters.length) onAll(true);
    });
    proxies.push(p);
    p.start();
  });
  const done = await within(all, 30_000);
  const conv = proxies.filter((p) => p.convergedAt !== undefined).map((p) => p.convergedAt! - t0);
  return {
    maxMs: done ? Math.max(...conv) : NaN,
    p50Ms: pct(conv, 50),
    p99Ms: pct(conv, 99),
    converged: conv.length,
    endpoints: proxies.reduce((n, p) => n + p.endpoints, 0),
    wantEndpoints: 0,
  };
}

/** `o.changes` successive connect_timeout changes of the defaults file, each waited for at every proxy. */
async function measureChanges(
  base: string,
  files: MeshFiles,
  proxies: SimProxy[],
  changes: number,
): Promise<NonNullable<ControlPlaneBenchResult["change"]>> {
  const values: [string, number][] = [["1500ms", 1500], ["2s", 2000], ["1s", 1000], ["2500ms", 2500]];
  const samples: number[] = [];
  const perChangeP99: number[] = [];
  const reloadMs: number[] = [];
  let responses = 0;
  let missed = 0;
  for (let c = 0; c < changes; c++) {
    const [text, ms] = values[c % values.length];
    const before = await readStats(base);
    const arrivals = proxies.map((p) => within(p.waitConnectTimeout(ms), 15_000));
    await Deno.writeTextFile(`${files.defaults}.tmp`, defaultsYaml(text));
    const t0 = performance.now();
    await Deno.rename(`${files.defaults}.tmp`, files.defaults); // as config tools write: never half a file
    const got = await Promise.all(arrivals);
    const round = got.filter((at) => at !== undefined).map((at) => at - t0);
    missed += got.length - round.length;
    samples.push(...round);
    perChangeP99.push(pct(round, 99));
    await sleep(400); // the control plane handles the ACKs before the next change
    const after = await readStats(base);
    const builds = (after.build_ms_count ?? 0) - (before.build_ms_count ?? 0);
    if (builds > 0) reloadMs.push((after.build_ms_sum - before.build_ms_sum) / builds);
    responses += (after.xds_responses ?? 0) - (before.xds_responses ?? 0);
    console.error(
      `control-plane: change ${c + 1}/${changes} (connect_timeout ${text}): p50 ${
        pct(round, 50).toFixed(0)
      } ms, ` +
        `p99 ${pct(round, 99).toFixed(0)} ms, max ${Math.max(...round).toFixed(0)} ms` +
        (round.length < got.length ? `, ${got.length - round.length} missed` : ""),
    );
  }
  return {
    samples,
    perChangeP99,
    missed,
    ...(reloadMs.length > 0 ? { reloadMs } : {}),
    responsesPerProxy: responses / (proxies.length * changes),
  };
}

/** Runs every part; never throws (a part that fails sets `error`). */
export async function runControlPlaneBench(o: ControlPlaneBenchOptions): Promise<ControlPlaneBenchResult> {
  const res: ControlPlaneBenchResult = {
    services: o.services,
    proxies: Math.min(o.proxies, o.services),
    hosts: o.services * o.hostsPerService,
    proxyErrors: [],
  };
  const dir = await Deno.makeTempDir({ prefix: "nuncio-cp-bench-" });
  const keep = o.keep || o.cpuProf;
  const sup = new Supervisor();
  if (!keep) sup.onInterrupt(() => Deno.removeSync(dir, { recursive: true }));
  const proxies: SimProxy[] = [];
  let proc: Managed | undefined;
  try {
    const files = await writeMesh(dir, o.services);
    const snap = res.snapshot = await snapshotBuild(files, o);
    console.error(
      `control-plane: snapshot build load ${snap.loadMs.toFixed(0)} ms, build ${
        snap.buildMs.toFixed(0)
      } ms, ` +
        `encode ${snap.encodeMs.toFixed(0)} ms`,
    );

    // the control plane, alone in its process
    const cp = await startControlPlaneProcess(sup, dir, files, o);
    proc = cp.proc;
    res.startMs = cp.startMs;
    const startKiB = (await procMemKiB(proc.pid)).rss;
    console.error(`control-plane: up in ${cp.startMs.toFixed(0)} ms, ${cp.nodeClusters} node clusters`);

    const t1 = performance.now();
    await register(cp.base, files.plan, o.hostsPerService);
    res.registerMs = performance.now() - t1;
    const check = await (await fetch(`${cp.base}/v1/registration/${files.plan.at(-1)!.name}`)).json();
    if (check.hosts?.length !== o.hostsPerService) {
      throw new Error(`registry holds ${check.hosts?.length} hosts`);
    }
    await sleep(300); // the coalesced endpoint reads and HDS targets settle
    const hostsKiB = (await procMemKiB(proc.pid)).rss;
    console.error(`control-plane: ${res.hosts} hosts registered in ${res.registerMs.toFixed(0)} ms`);

    // the proxies: node.cluster spread over the services
    const step = Math.max(1, Math.floor(o.services / res.proxies));
    const picks = Array.from({ length: res.proxies }, (_, k) => files.plan[(k * step) % o.services]);
    const initial = res.initial = await connectProxies(cp.grpcPort, picks.map((s) => s.name), proxies);
    initial.wantEndpoints = picks.reduce((n, s) => n + s.upstreams.length * o.hostsPerService, 0);
    console.error(
      `control-plane: ${initial.converged}/${picks.length} proxies converged, last at ${
        initial.maxMs.toFixed(0)
      } ms`,
    );
    if (initial.converged < picks.length) {
      throw new Error(`only ${initial.converged}/${picks.length} proxies converged in 30 s`);
    }
    const convergedKiB = await settledRss(proc.pid);

    res.change = await measureChanges(cp.base, files, proxies, o.changes);
    const afterChangesKiB = await settledRss(proc.pid, 2000);
    const peakKiB = (await procMemKiB(proc.pid)).hwm;
    res.rss = { startKiB, hostsKiB, convergedKiB, afterChangesKiB, peakKiB };
    res.stats = await readStats(cp.base);
  } catch (e) {
    res.error = (e as Error).message.split("\n").slice(0, 4).join(" | ");
  } finally {
    for (const p of proxies) res.proxyErrors.push(...p.errors);
    await Promise.all(proxies.map((p) => p.close().catch(() => {})));
    if (proc) await proc.stop(o.cpuProf ? 30_000 : 5000);
    await sup.dispose();
    if (keep) res.keptDir = dir;
    else await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
  return res;
}

/** True when the change target is met, every proxy converged and nothing failed. */
export function controlPlanePassed(r: ControlPlaneBenchResult): boolean {
  return r.error === undefined && r.change !== undefined && r.change.missed === 0 &&
    r.change.samples.length > 0 && pct(r.change.samples, 99) <= CONTROL_PLANE_P99_TARGET_MS &&
    r.proxyErrors.length === 0;
}

function mb(kib: number): string {
  return (kib / 1024).toFixed(1);
}

/** The report lines (see bench/README.md). */
export function formatControlPlane(r: ControlPlaneBenchResult): string {
  const lines: string[] = [];
  const s = r.snapshot;
  if (s) {
    lines.push(
      `control-plane snapshot build (${r.services} services): load ${s.loadMs.toFixed(0)} ms, build ${
        s.buildMs.toFixed(0)
      } ms, encode ${
        s.encodeMs.toFixed(0)
      } ms  [median of ${s.rounds}; ${s.nodeClusters} node clusters, ${s.resources} resources, ${
        (s.encodedBytes / 1048576).toFixed(1)
      } MB encoded]`,
    );
  }
  const i = r.initial;
  if (i) {
    const ep = i.endpoints === i.wantEndpoints ? "" : `, endpoints ${i.endpoints}/${i.wantEndpoints}`;
    lines.push(
      `control-plane initial convergence (${r.proxies} ADS proxies) = ${
        Number.isFinite(i.maxMs) ? i.maxMs.toFixed(0) : "n/a"
      } ms  [${i.converged}/${r.proxies} converged: CDS, EDS, LDS, RDS ACKed; p50 ${
        i.p50Ms.toFixed(0)
      } ms, p99 ${i.p99Ms.toFixed(0)} ms${ep}; control plane up in ${
        r.startMs?.toFixed(0)
      } ms, ${r.hosts} hosts registered in ${r.registerMs?.toFixed(0)} ms]`,
    );
  }
  const c = r.change;
  if (c && c.samples.length > 0) {
    const p99 = pct(c.samples, 99);
    const pass = controlPlanePassed(r);
    const reload = (c.reloadMs ? `; reload ${c.reloadMs.map((x) => x.toFixed(0)).join("/")} ms` : "") +
      (c.responsesPerProxy !== undefined ? `; ${c.responsesPerProxy.toFixed(1)} responses/proxy` : "");
    const miss = c.missed > 0 ? `; ${c.missed} missed` : "";
    lines.push(
      `control-plane change convergence p99 (${r.proxies} proxies) = ${
        p99.toFixed(0)
      } ms (target <= ${CONTROL_PLANE_P99_TARGET_MS} ms) ${
        pass ? "PASS" : "FAIL"
      }  [defaults connect_timeout x${c.perChangeP99.length}: p50 ${pct(c.samples, 50).toFixed(0)} ms, max ${
        Math.max(...c.samples).toFixed(0)
      } ms, per change p99 ${
        c.perChangeP99.map((x) => x.toFixed(0)).join("/")
      } ms; includes the 200 ms file poll${reload}${miss}]`,
    );
  }
  if (r.rss) {
    lines.push(
      `control-plane RSS (${r.services} services, ${r.hosts} hosts, ${r.proxies} proxies) = ${
        mb(r.rss.convergedKiB)
      } MB  [after start ${mb(r.rss.startKiB)} MB, hosts ${mb(r.rss.hostsKiB)} MB, after changes ${
        mb(r.rss.afterChangesKiB)
      } MB, peak ${mb(r.rss.peakKiB)} MB]`,
    );
  }
  if (r.error !== undefined) lines.push(`control-plane: n/a (${r.error})`);
  if (r.proxyErrors.length > 0) {
    lines.push(`control-plane: ${r.proxyErrors.length} proxy errors, first: ${r.proxyErrors[0]}`);
  }
  if (r.keptDir) lines.push(`control-plane: files kept in ${r.keptDir}`);
  return lines.join("\n");
}

if (import.meta.main) {
  const flag = (name: string, def: number) => {
    const i = Deno.args.indexOf(name);
    return i >= 0 ? Number(Deno.args[i + 1]) : def;
  };
  const bin = Deno.args.indexOf("--nuncio-bin");
  const o: ControlPlaneBenchOptions = {
    services: flag("--services", CONTROL_PLANE_DEFAULTS.services),
    proxies: flag("--proxies", CONTROL_PLANE_DEFAULTS.proxies),
    hostsPerService: flag("--hosts-per-service", CONTROL_PLANE_DEFAULTS.hostsPerService),
    buildRounds: Math.max(1, flag("--build-rounds", CONTROL_PLANE_DEFAULTS.buildRounds)),
    changes: Math.max(1, flag("--changes", CONTROL_PLANE_DEFAULTS.changes)),
    cpuProf: Deno.args.includes("--cpu-prof"),
    keep: Deno.args.includes("--keep"),
    ...(bin >= 0 ? { nuncioBin: Deno.args[bin + 1] } : {}),
  };
  const r = await runControlPlaneBench(o);
  console.log(formatControlPlane(r));
  Deno.exit(controlPlanePassed(r) ? 0 : 1);
}
