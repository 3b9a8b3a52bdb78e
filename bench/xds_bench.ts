/**
 * The xDS lines of `deno task bench` (issue 11), against one nuncio whose bootstrap only names an ADS management
 * server (tests/xds_grpc_server.ts, grpc-js, auto-responding through bench/xds_peer.ts):
 * 1. warm: time from the moment the management server has the responses (CDS, EDS, LDS, pre-encoded) to the
 *    moment nuncio's /stats shows every cluster active, none warming and every endpoint in membership_total;
 *    nuncio's RSS after.
 * 2. updates: `updates` successive versions (EDS for 10 clusters each, every 10th a CDS state of the world with
 *    one cluster changed), each waited for (ACK); settled RSS after the first against after the last.
 * 3. churn: wrk through a dynamic listener to an EDS cluster of 3 nginx origin ports, rounds with the cluster's
 *    endpoints flipping every `churnMs` against rounds without, interleaved; the ratio of req/s.
 */
import { findFreePorts, probeHttp, waitForPort } from "./lib/net.ts";
import { settledRssKiB, tailFile } from "./lib/proc.ts";
import { median, runWrk } from "./lib/wrk.ts";
import { formatRatio, type Ratio, ratio, type TargetResult } from "./report.ts";
import { BODY, type Env, type NuncioLaunch, originNginxConfig, spawnNuncio, yamlAdmin } from "./targets.ts";
import { AdsPeer, type Encoded, encodeResource, TYPES } from "./xds_peer.ts";

const HCM =
  "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
const ROUTER = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router";
const ADS = { ads: {}, resource_api_version: "V3" };

/** What runXdsBench does. */
export interface XdsBenchOptions {
  launch: NuncioLaunch;
  /** Repository root (for tests/xds_grpc_server.ts). */
  root: string;
  /** Dynamic clusters of the warm test (default 1000). */
  clusters: number;
  /** Endpoints over all of them (default 10000). */
  endpoints: number;
  /** Successive versions of the memory test (default 1000; 0 skips). */
  updates: number;
  /** Origin ports for the churn cluster (3 nginx ports). */
  origins: number[];
  /** Churn test: interleaved rounds (0 skips), seconds each, warm-up seconds, wrk connections and threads. */
  rounds: number;
  durationS: number;
  warmupS: number;
  connections: number;
  threads: number;
  /** EDS flip period of the churn rounds, ms (default 100). */
  churnMs?: number;
  /** Bound of the warm wait, ms (default 300000). */
  warmTimeoutMs?: number;
  /** Bound of the whole update series, ms (default 600000). */
  updatesTimeoutMs?: number;
}

/** What runXdsBench measured (absent parts failed or were skipped; `errors` says why). */
export interface XdsBenchResult {
  clusters: number;
  endpoints: number;
  warm?: {
    /** Responses available -> all clusters active with their endpoints, ms. */
    ms: number;
    /** Responses available -> first EDS request (CDS applied), ms. */
    edsRequestMs?: number;
    /** Responses available -> EDS ACK, ms. */
    edsAckMs?: number;
    /** nuncio RSS (settled) after, KiB. */
    rssKiB: number;
  };
  updates?: { done: number; cds: number; eds: number; ms: number; firstRssKiB: number; lastRssKiB: number };
  static?: TargetResult;
  churn?: TargetResult;
  /** EDS versions pushed and ACKed during churn rounds. */
  churnPushed: number;
  churnAcked: number;
  churnMs: number;
  errors: string[];
}

/** RSS growth target of the update series. */
export const XDS_RSS_GROWTH_TARGET = 1.1;
/** Churn throughput target. */
export const XDS_CHURN_TARGET = 0.9;

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** One nginx serving BODY on several ports (the origin config with one listen line per port). */
export async function startMultiOrigin(env: Env, ports: number[], name = "xds-origin"): Promise<void> {
  const base = originNginxConfig(env.dir, ports[0], env.nofile)
    .replaceAll(`${env.dir}/origin.`, `${env.dir}/${name}.`);
  const listen = `    listen 127.0.0.1:${ports[0]} reuseport backlog=4096;\n`;
  if (!base.includes(listen)) throw new Error("originNginxConfig changed: no listen line to multiply");
  const conf = base.replace(listen, ports.map((p) => `    listen 127.0.0.1:${p} backlog=4096;\n`).join(""));
  const path = `${env.dir}/${name}.conf`;
  Deno.writeTextFileSync(path, conf);
  const proc = env.sup.spawn(name, env.bins.nginx, ["-p", env.dir, "-c", path], {
    nofile: env.nofile,
    logPath: `${env.dir}/${name}.log`,
  });
  for (const p of ports) await waitForPort(p, { proc });
}

/** The tiny bootstrap: admin, ADS for CDS and LDS, the static `xds` cluster (HTTP/2) to the server. */
export function xdsBootstrap(admin: number, xds: number): string {
  return `node: {id: bench, cluster: bench}
${yamlAdmin(admin)}dynamic_resources:
  ads_config: {api_type: GRPC, transport_api_version: V3, grpc_services: [{envoy_grpc: {cluster_name: xds}}]}
  cds_config: {ads: {}, resource_api_version: V3}
  lds_config: {ads: {}, resource_api_version: V3}
static_resources:
  clusters:
  - name: xds
    type: STATIC
    connect_timeout: 1s
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: {http2_protocol_options: {}}
    load_assignment:
      cluster_name: xds
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: ${xds}}}}}]}]
`;
}

const clusterName = (i: number) => `c${String(i).padStart(4, "0")}`;

function clusterJson(name: string, connectTimeout = "1s"): Record<string, unknown> {
  return { name, type: "EDS", connect_timeout: connectTimeout, eds_cluster_config: { eds_config: ADS } };
}

function claJson(name: string, addrs: [string, number][]): Record<string, unknown> {
  return {
    cluster_name: name,
    endpoints: [{
      lb_endpoints: addrs.map(([address, port_value]) => ({
        endpoint: { address: { socket_address: { address, port_value } } },
      })),
    }],
  };
}

/** `count` endpoints of cluster `i` (addresses nobody listens on: no health checks, so never dialled). */
function fakeEndpoints(i: number, count: number, port = 8080): [string, number][] {
  return Array.from({ length: count }, (_, j) => {
    const n = i * count + j;
    return [`127.1.${(n >> 8) & 255}.${n & 255}`, port + (n >> 16)] as [string, number];
  });
}

function listenerJson(port: number): Record<string, unknown> {
  return {
    name: "bench-eds",
    address: { socket_address: { address: "127.0.0.1", port_value: port } },
    filter_chains: [{
      filters: [{
        name: "envoy.filters.network.http_connection_manager",
        typed_config: {
          "@type": HCM,
          stat_prefix: "bench_eds",
          route_config: {
            virtual_hosts: [{
              name: "all",
              domains: ["*"],
              routes: [{ match: { prefix: "/" }, route: { cluster: "churn" } }],
            }],
          },
          http_filters: [{ name: "envoy.filters.http.router", typed_config: { "@type": ROUTER } }],
        },
      }],
    }],
  };
}

async function stats(admin: number, filter: string): Promise<Map<string, number>> {
  const r = await fetch(`http://127.0.0.1:${admin}/stats?filter=${encodeURIComponent(filter)}`, {
    signal: AbortSignal.timeout(10_000),
  });
  const out = new Map<string, number>();
  for (const line of (await r.text()).split("\n")) {
    const i = line.lastIndexOf(": ");
    if (i > 0) out.set(line.slice(0, i), Number(line.slice(i + 2)));
  }
  return out;
}

/** Counts of the warm condition: active and warming clusters, endpoints over the dynamic clusters. */
async function warmState(admin: number): Promise<{ active: number; warming: number; members: number }> {
  const cm = await stats(admin, "^cluster_manager\\.(active|warming)_clusters$");
  const active = cm.get("cluster_manager.active_clusters") ?? 0;
  const warming = cm.get("cluster_manager.warming_clusters") ?? 0;
  let members = 0;
  for (const v of (await stats(admin, "^cluster\\.c[0-9]+\\.membership_total$")).values()) members += v;
  return { active, warming, members };
}

function newTarget(key: string, label: string, port: number): TargetResult {
  return { key, label, port, runs: [], errors: 0 };
}

/** See the file comment. Never throws: failures land in `errors` (with the log tail of nuncio). */
export async function runXdsBench(env: Env, o: XdsBenchOptions): Promise<XdsBenchResult> {
  const churnMs = o.churnMs ?? 100;
  const res: XdsBenchResult = {
    clusters: o.clusters,
    endpoints: o.endpoints,
    churnPushed: 0,
    churnAcked: 0,
    churnMs,
    errors: [],
  };
  const [admin, listenerPort] = findFreePorts(2);
  let peer: AdsPeer | undefined;
  let nuncio: Awaited<ReturnType<typeof spawnNuncio>> | undefined;
  const fail = (what: string, e: unknown) => {
    const tail = nuncio ? tailFile(nuncio.logPath, 600).trim().split("\n").slice(-4).join(" | ") : "";
    res.errors.push(`${what}: ${(e as Error).message.split("\n")[0]}${tail ? ` [nuncio log: ${tail}]` : ""}`);
  };
  try {
    // everything encoded up front: the timed part starts when the server has its answers
    const n = o.clusters;
    const per = Math.max(1, Math.floor(o.endpoints / Math.max(1, n)));
    const extra = o.endpoints - per * n; // the first `extra` clusters get one more
    const counts = Array.from({ length: n }, (_, i) => per + (i < extra ? 1 : 0));
    const clusters: Encoded[] = [];
    const clas: Encoded[] = [];
    for (let i = 0; i < n; i++) {
      const name = clusterName(i);
      clusters.push(encodeResource(TYPES.cluster, name, clusterJson(name)));
      clas.push(encodeResource(TYPES.endpoint, name, claJson(name, fakeEndpoints(i, counts[i]))));
    }
    console.error(`xds: ${n} clusters, ${o.endpoints} endpoints encoded; starting the ADS server and nuncio`);
    peer = await AdsPeer.start(env.sup, { root: o.root, dir: env.dir });
    nuncio = await spawnNuncio(env, o.launch, "nuncio-xds", xdsBootstrap(admin, peer.port), [admin]);
    await peer.waitRequest(TYPES.cluster, 30_000);

    // 1. warm
    const t0 = performance.now();
    peer.set(TYPES.endpoint, "e1", clas, true);
    peer.set(TYPES.listener, "l1", [], true);
    peer.set(TYPES.cluster, "c1", clusters, true);
    let edsAckMs: number | undefined;
    const deadline = t0 + (o.warmTimeoutMs ?? 300_000);
    let last = { active: 0, warming: 0, members: 0 };
    let polled = 0;
    for (;;) {
      if (edsAckMs === undefined && peer.acked(TYPES.endpoint, "e1")) edsAckMs = performance.now() - t0;
      if (nuncio.exited()) throw new Error("nuncio exited while warming");
      // /stats snapshots every stat (costly with 1000 clusters, on nuncio's only thread): every 50 ms once the
      // EDS version is ACKed, every second before
      if (edsAckMs !== undefined || performance.now() - polled >= 1000) {
        polled = performance.now();
        last = await warmState(admin).catch(() => last);
        if (last.active >= n + 1 && last.warming === 0 && last.members >= o.endpoints) break;
      }
      if (performance.now() > deadline) {
        throw new Error(
          `not warm after ${
            o.warmTimeoutMs ?? 300_000
          } ms: active ${last.active}, warming ${last.warming}, ` +
            `endpoints ${last.members}`,
        );
      }
      await sleep(50);
    }
    const ms = performance.now() - t0;
    const eds = peer.firstRequestAt.get(TYPES.endpoint);
    res.warm = {
      ms,
      edsRequestMs: eds !== undefined ? eds - t0 : undefined,
      edsAckMs: edsAckMs ?? (peer.acked(TYPES.endpoint, "e1") ? ms : undefined),
      // settled: after nuncio's post-update compaction (quiet 1 s, at most every 5 s)
      rssKiB: await new Promise((r) => setTimeout(r, 6500)).then(() => settledRssKiB(nuncio!.pid)),
    };
    console.error(`xds: warm in ${Math.round(ms)} ms, RSS ${(res.warm.rssKiB / 1024).toFixed(1)} MB`);

    // 2. successive versions
    if (o.updates > 0) {
      try {
        res.updates = await updateSeries(peer, nuncio.pid, clusters, n, o);
      } catch (e) {
        fail("updates", e);
      }
    }

    // 3. EDS churn under load
    if (o.rounds > 0) {
      try {
        await churnRounds(peer, res, clusters, listenerPort, o, churnMs);
      } catch (e) {
        fail("churn", e);
      }
    }
  } catch (e) {
    fail("xds", e);
  } finally {
    await nuncio?.stop().catch(() => {});
    await peer?.stop().catch(() => {});
  }
  return res;
}

async function updateSeries(
  peer: AdsPeer,
  pid: number,
  clusters: Encoded[],
  n: number,
  o: XdsBenchOptions,
): Promise<NonNullable<XdsBenchResult["updates"]>> {
  const state = [...clusters];
  const out = { done: 0, cds: 0, eds: 0, ms: 0, firstRssKiB: 0, lastRssKiB: 0 };
  const t0 = performance.now();
  let waitedMs = 0;
  const end = t0 + (o.updatesTimeoutMs ?? 600_000);
  console.error(`xds: ${o.updates} successive versions`);
  for (let k = 1; k <= o.updates; k++) {
    if (k % 10 === 0) {
      // CDS state of the world, one cluster's connect_timeout changed (it re-warms from its last endpoints)
      const i = (k / 10) % n;
      const name = clusterName(i);
      state[i] = encodeResource(TYPES.cluster, name, clusterJson(name, `${1 + ((k / 10) % 3)}s`));
      peer.set(TYPES.cluster, `c-u${k}`, state, true);
      await peer.waitAck(TYPES.cluster, `c-u${k}`, 60_000);
      out.cds++;
    } else {
      // EDS: 10 clusters get new endpoints (new ports: new hosts)
      const changed: Encoded[] = [];
      for (let j = 0; j < Math.min(10, n); j++) {
        const i = (k * 10 + j) % n;
        const name = clusterName(i);
        const count = Math.max(1, Math.round(o.endpoints / n));
        changed.push(
          encodeResource(TYPES.endpoint, name, claJson(name, fakeEndpoints(i, count, 9000 + (k % 50)))),
        );
      }
      peer.set(TYPES.endpoint, `e-u${k}`, changed, false);
      await peer.waitAck(TYPES.endpoint, `e-u${k}`, 60_000);
      out.eds++;
    }
    out.done = k;
    if (k === 1) {
      // after nuncio's post-update compaction (quiet 1 s, at most every 5 s), as for the last measure below
      const w0 = performance.now();
      await new Promise((r) => setTimeout(r, 6500));
      out.firstRssKiB = await settledRssKiB(pid);
      waitedMs += performance.now() - w0;
    }
    if (k % 100 === 0) console.error(`xds: ${k}/${o.updates} versions applied`);
    if (performance.now() > end) throw new Error(`update series over its time bound after ${k} versions`);
  }
  out.ms = performance.now() - t0 - waitedMs;
  // nuncio compacts its heap once updates have been quiet for 1 s (at most every 5 s: src/common/heap.ts);
  // the first measure above came after that quiet period too, so both are the settled, steady-state RSS
  await new Promise((r) => setTimeout(r, 6500));
  out.lastRssKiB = await settledRssKiB(pid);
  return out;
}

async function churnRounds(
  peer: AdsPeer,
  res: XdsBenchResult,
  clusters: Encoded[],
  port: number,
  o: XdsBenchOptions,
  churnMs: number,
): Promise<void> {
  const [a, b, c] = [o.origins[0], o.origins[1] ?? o.origins[0], o.origins[2] ?? o.origins[0]];
  const sets: [string, number][][] = [[["127.0.0.1", a], ["127.0.0.1", b]], [["127.0.0.1", b], [
    "127.0.0.1",
    c,
  ]], [["127.0.0.1", c], ["127.0.0.1", a]]];
  const cla = (k: number) => encodeResource(TYPES.endpoint, "churn", claJson("churn", sets[k % 3]));
  peer.set(TYPES.endpoint, "churn-0", [cla(0)], false);
  peer.set(TYPES.cluster, "c-churn", [
    ...clusters,
    encodeResource(TYPES.cluster, "churn", clusterJson("churn")),
  ], true);
  peer.set(
    TYPES.listener,
    "l-churn",
    [encodeResource(TYPES.listener, "bench-eds", listenerJson(port))],
    true,
  );
  await peer.waitAck(TYPES.listener, "l-churn", 60_000);
  await waitForPort(port, { timeoutMs: 30_000 });
  const probeEnd = performance.now() + 30_000;
  for (;;) {
    const p = await probeHttp(port).catch((e) => ({ status: 0, bodyBytes: 0, e }));
    if (p.status === 200 && p.bodyBytes === BODY.length) break;
    if (performance.now() > probeEnd) throw new Error(`the EDS listener answered ${p.status}`);
    await sleep(100);
  }
  const st = res.static = newTarget("nuncio-eds-static", "nuncio EDS static", port);
  const ch = res.churn = newTarget("nuncio-eds-churn", "nuncio EDS churn", port);
  let version = 0;
  const wrk = (d: number) =>
    runWrk({
      url: `http://127.0.0.1:${port}/`,
      threads: o.threads,
      connections: o.connections,
      durationS: d,
    });
  const withChurn = async <T>(f: () => Promise<T>): Promise<T> => {
    const pushed: string[] = [];
    const timer = setInterval(() => {
      const v = `churn-${++version}`;
      pushed.push(v);
      peer.set(TYPES.endpoint, v, [cla(version)], false);
    }, churnMs);
    try {
      return await f();
    } finally {
      clearInterval(timer);
      // let the last version land before anything else is measured
      if (pushed.length) await peer.waitAck(TYPES.endpoint, pushed.at(-1)!, 10_000).catch(() => {});
      res.churnPushed += pushed.length;
      res.churnAcked += pushed.filter((v) => peer.acked(TYPES.endpoint, v)).length;
    }
  };
  if (o.warmupS > 0) {
    console.error(`xds: warm-up EDS listener (${o.warmupS}s, with churn)`);
    const before = { p: res.churnPushed, a: res.churnAcked };
    await withChurn(() => wrk(o.warmupS));
    Object.assign(res, { churnPushed: before.p, churnAcked: before.a });
  }
  for (let round = 1; round <= o.rounds; round++) {
    const order = round % 2 === 1 ? [st, ch] : [ch, st];
    for (const t of order) {
      const r = t === ch ? await withChurn(() => wrk(o.durationS)) : await wrk(o.durationS);
      t.runs.push(r);
      t.errors += r.socketErrors + r.non2xx;
      console.error(`xds round ${round}/${o.rounds} ${t.label}: ${Math.round(r.rps)} req/s`);
    }
  }
  for (const t of [st, ch]) {
    t.median = {
      rps: median(t.runs.map((r) => r.rps)),
      p50Us: median(t.runs.map((r) => r.p50Us)),
      p99Us: median(t.runs.map((r) => r.p99Us)),
    };
  }
}

/** The churn ratio (NaN when it did not run). */
export function xdsChurnRatio(r: XdsBenchResult): Ratio {
  return ratio("xds nuncio-eds-churn/nuncio-eds-static", r.churn, r.static, XDS_CHURN_TARGET);
}

const mb = (kib: number) => `${(kib / 1024).toFixed(1)} MB`;

/** The report lines. */
export function formatXdsReport(r: XdsBenchResult): string {
  const lines: string[] = [];
  if (r.warm) {
    const parts = [
      r.warm.edsRequestMs !== undefined
        ? `CDS applied, EDS asked at ${Math.round(r.warm.edsRequestMs)} ms`
        : "",
      r.warm.edsAckMs !== undefined ? `EDS ACKed at ${Math.round(r.warm.edsAckMs)} ms` : "",
    ].filter(Boolean);
    lines.push(
      `xds warm ${r.clusters} clusters / ${r.endpoints} endpoints (ADS) = ${Math.round(r.warm.ms)} ms, ` +
        `RSS after = ${mb(r.warm.rssKiB)}  [${parts.join(", ")}]`,
    );
  } else lines.push(`xds warm ${r.clusters} clusters / ${r.endpoints} endpoints = n/a`);
  const cr = xdsChurnRatio(r);
  if (r.churn || r.static) {
    lines.push(
      `${formatRatio(cr)}  (EDS every ${r.churnMs} ms: ${r.churnAcked}/${r.churnPushed} versions ACKed; ` +
        `${Math.round(r.churn?.median?.rps ?? NaN)} vs ${Math.round(r.static?.median?.rps ?? NaN)} req/s; ` +
        `errors ${(r.churn?.errors ?? 0) + (r.static?.errors ?? 0)})`,
    );
  } else lines.push(formatRatio(cr));
  const u = r.updates;
  if (u && u.lastRssKiB > 0) {
    const x = u.lastRssKiB / u.firstRssKiB;
    lines.push(
      `xds RSS after ${u.done} updates / after first = ${x.toFixed(2)} (target <= ${
        XDS_RSS_GROWTH_TARGET.toFixed(2)
      }) ${x <= XDS_RSS_GROWTH_TARGET ? "PASS" : "FAIL"}  [${mb(u.firstRssKiB)} -> ${mb(u.lastRssKiB)}; ` +
        `${u.eds} EDS + ${u.cds} CDS versions in ${(u.ms / 1000).toFixed(1)} s, ${
          (u.ms / u.done).toFixed(1)
        } ms each]`,
    );
  } else lines.push(`xds RSS after updates / after first = n/a`);
  for (const e of r.errors) lines.push(`note: xds: ${e}`);
  return lines.join("\n");
}

/** True when a measured xDS goal was missed (for --strict). */
export function xdsFailed(r: XdsBenchResult): boolean {
  const cr = xdsChurnRatio(r);
  const u = r.updates;
  return (Number.isFinite(cr.value) && !cr.pass) ||
    (u !== undefined && u.lastRssKiB > 0 && u.lastRssKiB / u.firstRssKiB > XDS_RSS_GROWTH_TARGET) ||
    r.errors.length > 0;
}
