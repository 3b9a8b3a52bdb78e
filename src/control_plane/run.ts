/**
 * Assembles a running control plane: the ControlPlane core, the hosts source (a registry in the same process,
 * or a remote one's v1 API), one gRPC port (h2c) serving ADS and the per-type xDS services, HDS and LRS, and
 * one HTTP port serving the mesh report (`/mesh`, a page; `?format=json`), REST-JSON xDS
 * (`POST /v3/discovery:*`), `/hds`, `/load`, `/inputs`, `/healthcheck` and `/stats`; with an embedded
 * registry, its v1 API too. Used by `nuncio control-plane` (cli.ts) and the bootstrap extension.
 */
import { Logger } from "../common/log.ts";
import { discoveryHttpHandler } from "../discovery/http.ts";
import { Registry } from "../discovery/registry.ts";
import { MemoryStore } from "../discovery/store.ts";
import { GrpcServer } from "../grpc/server.ts";
import { formatStatsJson, formatStatsText, parseStatsQuery } from "../stats/format.ts";
import { formatPrometheus } from "../stats/prometheus.ts";
import { StatsStore } from "../stats/store.ts";
import { ControlPlane } from "./control_plane.ts";
import { type EndpointSource, LocalEndpoints, RemoteEndpoints } from "./endpoints.ts";
import { HdsServer } from "./hds.ts";
import type { InputPaths } from "./inputs.ts";
import { LrsServer } from "./lrs.ts";
import { meshPage, meshReport, MeshState } from "./mesh.ts";
import { REST_PATHS, restDiscovery } from "./rest.ts";
import { XdsServer, type XdsServerOptions } from "./xds_server.ts";

const log = new Logger("control-plane");

/** How to run the control plane. */
export interface ControlPlaneServiceOptions {
  paths: InputPaths;
  /** HTTP port (mesh report, REST xDS, stats); 0 picks one. */
  port: number;
  /** gRPC port (ADS, xDS, HDS, LRS); 0 picks one. */
  grpcPort: number;
  /** Address to bind (default 127.0.0.1). */
  hostname?: string;
  /** A remote registry's base URL; absent: a registry runs in this process (memory store, v1 API on `port`). */
  registryUrl?: string;
  /** How often a remote registry is polled (default 5000 ms). */
  registryRefreshMs?: number;
  /** TTL of the embedded registry's hosts (default 600 000 ms). */
  registryTtlMs?: number;
  /** How often inputs are checked for changes (default 1000 ms). */
  watchIntervalMs?: number;
  /** LRS load_reporting_interval (default 10 000 ms). */
  loadReportIntervalMs?: number;
  xds?: XdsServerOptions;
  stats?: StatsStore;
}

/** A running control plane. */
export interface ControlPlaneHandle extends AsyncDisposable {
  readonly controlPlane: ControlPlane;
  readonly mesh: MeshState;
  readonly hds: HdsServer;
  readonly lrs: LrsServer;
  readonly xds: XdsServer;
  /** The embedded registry, when there is one. */
  readonly registry: Registry | undefined;
  readonly stats: StatsStore;
  readonly port: number;
  readonly grpcPort: number;
  close(): Promise<void>;
}

/** Starts it; the first read of the inputs may have errors (they are reported and served around). */
export async function startControlPlane(opts: ControlPlaneServiceOptions): Promise<ControlPlaneHandle> {
  const stats = opts.stats ?? new StatsStore();
  const scope = stats.scope("control_plane.");
  let registry: Registry | undefined;
  let endpoints: EndpointSource;
  if (opts.registryUrl) {
    endpoints = new RemoteEndpoints({
      url: opts.registryUrl,
      refreshMs: opts.registryRefreshMs,
      stats: scope,
    });
  } else {
    registry = new Registry({ store: new MemoryStore(), stats, ttlMs: opts.registryTtlMs });
    registry.start();
    endpoints = new LocalEndpoints(registry);
  }
  const cp = new ControlPlane({
    paths: opts.paths,
    endpoints,
    stats: scope,
    watchIntervalMs: opts.watchIntervalMs,
  });
  const mesh = new MeshState(scope);
  try {
    await cp.start(); // errors in the inputs are reported and served around
  } catch (e) {
    await cp.close();
    await endpoints.close();
    await registry?.close();
    throw e;
  }
  const hdsSettings = cp.inputs?.defaults?.value.hds;
  const hds = new HdsServer({
    targets: () => cp.hdsTargets(),
    stats: scope,
    checkersPerEndpoint: hdsSettings?.checkers_per_endpoint,
    intervalMs: hdsSettings?.interval,
  });
  cp.attachHds(hds);
  const lrs = new LrsServer({ intervalMs: opts.loadReportIntervalMs, stats: scope.scope("lrs.") });
  const xds = new XdsServer(cp.cache, mesh, scope.scope("xds."), opts.xds);
  const grpc = new GrpcServer({ h2: { max_concurrent_streams: 1024 } });
  xds.registerOn(grpc);
  hds.registerOn(grpc);
  lrs.registerOn(grpc);
  const hostname = opts.hostname ?? "127.0.0.1";
  const closeAll = async (http?: Deno.HttpServer) => {
    await xds.close();
    hds.close();
    lrs.close();
    await grpc.shutdown(1000);
    await http?.shutdown();
    await cp.close();
    await endpoints.close();
    await registry?.close();
  };
  let grpcPort: number;
  let http: Deno.HttpServer<Deno.NetAddr>;
  try {
    grpcPort = grpc.listen({ hostname, port: opts.grpcPort }).port;
    const registryApi = registry ? discoveryHttpHandler(registry) : undefined;
    http = Deno.serve(
      { hostname, port: opts.port, onListen: () => {} },
      (req) => handle(req, { cp, mesh, hds, lrs, stats, registryApi }),
    );
  } catch (e) {
    await closeAll();
    throw e;
  }
  log.info(
    `Control plane up: ${cp.cache.nodeClusters().length} node clusters, gRPC (ADS, xDS, HDS, LRS) ` +
      `${hostname}:${grpcPort}, HTTP ${hostname}:${http.addr.port}` +
      (registry ? " (with the registry's v1 API)" : `, hosts from ${opts.registryUrl}`),
  );
  let closed: Promise<void> | undefined;
  const close = () => closed ??= closeAll(http);
  return {
    controlPlane: cp,
    mesh,
    hds,
    lrs,
    xds,
    registry,
    stats,
    port: http.addr.port,
    grpcPort,
    close,
    [Symbol.asyncDispose]: close,
  };
}

interface Parts {
  cp: ControlPlane;
  mesh: MeshState;
  hds: HdsServer;
  lrs: LrsServer;
  stats: StatsStore;
  registryApi?: (req: Request) => Promise<Response>;
}

function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body, null, 2) + "\n", {
    status,
    headers: { "content-type": "application/json" },
  });
}

function text(status: number, body: string): Response {
  return new Response(body, { status, headers: { "content-type": "text/plain; charset=utf-8" } });
}

async function handle(req: Request, p: Parts): Promise<Response> {
  const url = new URL(req.url);
  const path = url.pathname;
  try {
    if (Object.hasOwn(REST_PATHS, path)) {
      if (req.method !== "POST") return text(405, "Method not allowed\n");
      const a = await restDiscovery(p.cp.cache, p.mesh, path, await req.text());
      if (a.status === 304) return new Response(null, { status: 304 });
      return new Response(a.body, {
        status: a.status,
        headers: { "content-type": a.contentType ?? "application/json" },
      });
    }
    switch (path) {
      case "/mesh": {
        const report = meshReport({
          mesh: p.mesh,
          registered: await p.cp.registered(),
          manifests: new Set(p.cp.inputs?.manifests.keys() ?? []),
          edge: p.cp.inputs?.edge?.value.node_cluster,
          errors: p.cp.errors,
          nodeVersion: (c) => p.cp.cache.nodeVersion(c),
        });
        const wantsJson = url.searchParams.get("format") === "json" ||
          (req.headers.get("accept") ?? "").includes("application/json");
        if (wantsJson) return json(report);
        return new Response(meshPage(report), { headers: { "content-type": "text/html; charset=utf-8" } });
      }
      case "/inputs":
        return json({
          errors: p.cp.errors,
          kept_last_good: [...(p.cp.inputs?.kept ?? [])],
          manifests: [...(p.cp.inputs?.manifests.values() ?? [])].map((m) => m.file).sort(),
          node_clusters: p.cp.cache.nodeClusters(),
        });
      case "/hds":
        return json(p.hds.status());
      case "/load":
        return json(p.lrs.loads());
      case "/healthcheck":
        return text(200, "OK\n");
      case "/stats":
      case "/stats/prometheus": {
        const q = parseStatsQuery(url.searchParams);
        if (typeof q === "string") return text(400, q);
        const snap = p.stats.snapshot();
        if (path === "/stats/prometheus") return text(200, formatPrometheus(snap, q));
        if (url.searchParams.get("format") === "json") {
          return new Response(formatStatsJson(snap, q), { headers: { "content-type": "application/json" } });
        }
        return text(200, formatStatsText(snap, q));
      }
    }
    if (p.registryApi) return await p.registryApi(req);
    return text(404, "Not found\n");
  } catch (e) {
    log.warn(`${req.method} ${path}: ${(e as Error).message}`);
    return text(500, `${(e as Error).message}\n`);
  }
}
