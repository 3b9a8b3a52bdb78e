/**
 * `deno task bench`: HTTP/1.1 and TCP throughput of nuncio against nginx and HAProxy started by the
 * same run on the same machine (all on 127.0.0.1, one worker each), plus nuncio's memory per idle
 * keep-alive connection. See bench/README.md for every line of the report.
 */

import { Supervisor } from "./lib/proc.ts";
import { findFreePorts, probeHttp } from "./lib/net.ts";
import { median, runWrk } from "./lib/wrk.ts";
import { ensureTools } from "./lib/tools.ts";
import { BODY, type Env, startDenoFloor, startHaproxy, startNginxProxy, startOrigin } from "./targets.ts";
import {
  formatMemory,
  formatRatio,
  formatTable,
  IDLE_RSS_TARGET_MB,
  type MemoryResult,
  ratio,
  type TargetResult,
} from "./report.ts";
import { measureMemory } from "./memory_bench.ts";
import { type NuncioLaunch, startNuncio } from "./targets.ts";
import { startNuncioResilient } from "./resilient.ts";
import { formatRatelimitCost, ratelimitOkCount, startNuncioRatelimit } from "./ratelimit_target.ts";
import { formatDecisions, runDecisionsBench } from "./ratelimit_bench.ts";
import {
  formatRegistry,
  type RegistryBenchOptions,
  type RegistryBenchRow,
  registryPassed,
  runRegistryBench,
} from "./registry_bench.ts";
import {
  CONTROL_PLANE_DEFAULTS,
  type ControlPlaneBenchResult,
  controlPlanePassed,
  formatControlPlane,
  runControlPlaneBench,
} from "./control_plane_bench.ts";
import { type Options, parseOptions } from "./options.ts";
import {
  formatMongoBench,
  type MongoBenchOptions,
  type MongoBenchResult,
  runMongoBench,
} from "./mongo_bench.ts";
import {
  formatRedisBench,
  type RedisBenchOptions,
  type RedisBenchRow,
  runRedisBench,
} from "./redis_bench.ts";
import { formatTracingBench, runTracingBench, type TracingBenchResult } from "./tracing_bench.ts";
import { formatStartup, runStartupBench, STARTUP_TARGET_MS, type StartupResult } from "./startup_bench.ts";
import {
  formatXdsReport,
  runXdsBench,
  startMultiOrigin,
  type XdsBenchResult,
  xdsChurnRatio,
  xdsFailed,
} from "./xds_bench.ts";
import { formatH2Report, H2_KEYS, h2Ratios, type H2Setup, measureH2, setupH2Targets } from "./h2_bench.ts";
import {
  type CompressionBenchResult,
  compressionRatio,
  formatCompression,
  runCompressionBench,
} from "./compression_bench.ts";

const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

function hardNofile(): number {
  const out = new Deno.Command("bash", { args: ["-c", "ulimit -Hn"], stdout: "piped" }).outputSync();
  const v = new TextDecoder().decode(out.stdout).trim();
  return v === "unlimited" ? 65536 : Math.min(65536, Number(v) || 4096);
}

function newTarget(key: string, label: string, port: number): TargetResult {
  return { key, label, port, runs: [], errors: 0 };
}

async function checkTarget(t: TargetResult): Promise<void> {
  try {
    const r = await probeHttp(t.port);
    if (r.status !== 200 || r.bodyBytes !== BODY.length) {
      t.error = `probe answered ${r.status} with ${r.bodyBytes} body bytes (want 200 and ${BODY.length})`;
    }
  } catch (e) {
    t.error = `probe failed: ${(e as Error).message}`;
  }
}

/** Measurement order: each nuncio target right next to the one it is compared with. */
const MEASURE_ORDER = [
  "direct",
  "haproxy-http",
  "deno-floor",
  "nginx",
  "nuncio-ratelimit",
  "nuncio-http",
  "nuncio-resilient",
  "nuncio-tcp",
  "haproxy-tcp",
];

async function measure(targets: TargetResult[], o: Options): Promise<void> {
  const live = targets.filter((t) => !t.error);
  const wrk = (t: TargetResult, durationS: number, connections: number) =>
    runWrk({ url: `http://127.0.0.1:${t.port}/`, threads: o.threads, connections, durationS });
  for (const t of live) {
    if (o.warmupS <= 0) break;
    console.error(`warm-up ${t.label} (${o.warmupS}s)`);
    await wrk(t, o.warmupS, o.connections).catch((e) => (t.error = (e as Error).message));
  }
  // Paired targets run back to back; every other round runs in reverse (A B C, C B A, ...).
  const order = [...live].sort((a, b) => MEASURE_ORDER.indexOf(a.key) - MEASURE_ORDER.indexOf(b.key));
  for (let round = 1; round <= o.rounds; round++) {
    for (const t of round % 2 === 1 ? order : [...order].reverse()) {
      if (t.error) continue;
      try {
        const r = await wrk(t, o.durationS, o.connections);
        t.runs.push(r);
        t.errors += r.socketErrors + r.non2xx;
        console.error(`round ${round}/${o.rounds} ${t.label}: ${Math.round(r.rps)} req/s`);
      } catch (e) {
        t.error = (e as Error).message;
      }
    }
  }
  for (const t of live) {
    if (o.c1S <= 0 || t.error) continue;
    try {
      t.c1 = await wrk(t, o.c1S, 1);
      t.errors += t.c1.socketErrors + t.c1.non2xx;
    } catch (e) {
      t.error = (e as Error).message;
    }
  }
  for (const t of targets) {
    if (t.runs.length === 0) continue;
    t.median = {
      rps: median(t.runs.map((r) => r.rps)),
      p50Us: median(t.runs.map((r) => r.p50Us)),
      p99Us: median(t.runs.map((r) => r.p99Us)),
    };
  }
}

async function main(): Promise<number> {
  // --ratelimit: only the issue 5 lines (plain vs rate-limited nuncio route, then decisions/s of the service)
  const rlOnly = Deno.args.includes("--ratelimit");
  const o = parseOptions(Deno.args.filter((a) => a !== "--ratelimit"));
  if (rlOnly) Object.assign(o, { only: o.only ?? ["nuncio-http", "nuncio-ratelimit"], memory: false });
  const want = (key: string) => !o.only || o.only.includes(key);
  const launch: NuncioLaunch = { root: ROOT, bin: o.nuncioBin };
  let nuncioNote = "";
  if (o.nuncio && !o.nuncioBin) {
    try {
      Deno.statSync(`${ROOT}/main.ts`);
    } catch {
      o.nuncio = false;
      nuncioNote = `nuncio skipped: ${ROOT}/main.ts does not exist`;
    }
  }
  const bins = await ensureTools([
    { bin: "nginx", packages: ["nginx-light", "nginx"] },
    { bin: "haproxy", packages: ["haproxy"] },
    { bin: "wrk", packages: ["wrk"] },
    ...(H2_KEYS.some(want)
      ? [{ bin: "h2load", packages: ["nghttp2-client"] }, { bin: "curl", packages: ["curl"] }]
      : []),
  ]);
  const dir = Deno.makeTempDirSync({ prefix: "nuncio-bench-" });
  const sup = new Supervisor();
  if (!o.keep) sup.onInterrupt(() => Deno.removeSync(dir, { recursive: true }));
  const env: Env = {
    dir,
    sup,
    bins: { nginx: bins.get("nginx")!, haproxy: bins.get("haproxy")! },
    nofile: hardNofile(),
  };
  /** Each later part runs alone on the machine: every process but the origin stops first. */
  const stopAllButOrigin = async () => {
    for (const p of sup.live().filter((p) => p.name !== "origin")) await p.stop();
  };
  /** The wrk load every part measuring req/s uses. */
  const wrkLoad = {
    rounds: o.rounds,
    durationS: o.durationS,
    warmupS: o.warmupS,
    connections: o.connections,
    threads: o.threads,
  };
  const targets: TargetResult[] = [];
  let memory: MemoryResult | undefined;
  let rlCalls = 0;
  let h2: H2Setup | undefined;
  let xds: XdsBenchResult | undefined;
  let registry: RegistryBenchRow[] | undefined;
  let controlPlane: ControlPlaneBenchResult | undefined;
  let compression: CompressionBenchResult | undefined;
  let startup: StartupResult | undefined;
  let mongo: MongoBenchResult | undefined;
  let tracing: TracingBenchResult | undefined;
  let redis: RedisBenchRow[] | undefined;
  let redisOpts: RedisBenchOptions | undefined;
  let mongoOpts: MongoBenchOptions | undefined;
  const registryOpts: RegistryBenchOptions = {
    durationMs: Math.max(1, Math.min(3, o.durationS)) * 1000,
    hosts: 10_000,
    concurrency: 32,
    redis: true,
    nuncioBin: o.nuncioBin,
  };
  try {
    const ports = findFreePorts(13);
    const [origin, nginx, hHttp, hTcp, admin, nHttp, nTcp, rAdmin, rHttp, lAdmin, lHttp, lRls, floor] = ports;
    await startOrigin(env, origin);
    const add = async (key: string, label: string, port: number, start: () => Promise<unknown>) => {
      if (!want(key)) return;
      const t = newTarget(key, label, port);
      targets.push(t);
      try {
        await start();
        await checkTarget(t);
      } catch (e) {
        t.error = (e as Error).message.split("\n").slice(0, 6).join(" | ");
      }
    };
    await add("direct", "direct origin", origin, () => Promise.resolve());
    await add("nginx", "nginx", nginx, () => startNginxProxy(env, nginx, origin));
    await add(
      "haproxy-http",
      "HAProxy HTTP",
      hHttp,
      () => startHaproxy(env, "http", { port: hHttp, origin }),
    );
    await add("haproxy-tcp", "HAProxy TCP", hTcp, () => startHaproxy(env, "tcp", { port: hTcp, origin }));
    await add("deno-floor", "Deno floor", floor, () => startDenoFloor(env, floor, origin));
    if (o.nuncio && (want("nuncio-http") || want("nuncio-tcp"))) {
      let startError = "";
      try {
        await startNuncio(env, launch, { admin, http: nHttp, tcp: nTcp, origin });
      } catch (e) {
        startError = (e as Error).message.split("\n").slice(0, 6).join(" | ");
      }
      for (
        const [key, label, port] of [["nuncio-http", "nuncio HTTP", nHttp], [
          "nuncio-tcp",
          "nuncio TCP",
          nTcp,
        ]] as const
      ) {
        if (!want(key)) continue;
        const t = newTarget(key, label, port);
        targets.push(t);
        if (startError) t.error = startError;
        else await checkTarget(t);
      }
    }
    if (o.nuncio) {
      await add(
        "nuncio-resilient",
        "nuncio resilient",
        rHttp,
        () => startNuncioResilient(env, launch, { admin: rAdmin, http: rHttp, origin }),
      );
    }
    if (o.nuncio) {
      await add(
        "nuncio-ratelimit",
        "nuncio ratelimit",
        lHttp,
        () => startNuncioRatelimit(env, launch, { admin: lAdmin, http: lHttp, origin, rls: lRls }),
      );
    }
    if (H2_KEYS.some(want)) h2 = await setupH2Targets(env, { launch, origin, nuncio: o.nuncio, want });
    for (const t of [...targets, ...h2?.targets ?? []]) if (t.error) console.error(`${t.label}: ${t.error}`);
    console.error(
      `measuring ${targets.filter((t) => !t.error).length} targets: wrk -t${o.threads} -c${o.connections} ` +
        `-d${o.durationS}s, ${o.rounds} interleaved round(s), config in ${dir}`,
    );
    await measure(targets, o);
    if (h2) await measureH2(h2, { ...o, clients: o.h2Clients, streams: o.h2Streams });
    if (targets.some((t) => t.key === "nuncio-ratelimit" && !t.error)) {
      rlCalls = await ratelimitOkCount(lAdmin).catch(() => 0);
    }
    if (o.nuncio && want("compression")) {
      // compressed responses/s of nuncio's compressor vs nginx's gzip, with only the origin left running
      await stopAllButOrigin();
      compression = await runCompressionBench(env, {
        launch,
        ...wrkLoad,
      });
    }
    if (o.nuncio && want("xds")) {
      // issue 11, alone on the machine: only the origin stays up
      await stopAllButOrigin();
      const [o2, o3] = findFreePorts(2);
      try {
        await startMultiOrigin(env, [o2, o3]);
        xds = await runXdsBench(env, {
          launch,
          root: ROOT,
          clusters: o.xdsClusters,
          endpoints: o.xdsEndpoints,
          updates: o.xdsUpdates,
          origins: [origin, o2, o3],
          rounds: o.rounds,
          durationS: o.durationS,
          warmupS: o.warmupS,
          connections: o.connections,
          threads: o.threads,
        });
      } catch (e) {
        console.error(`xds bench: ${(e as Error).message}`);
      }
      await stopAllButOrigin();
    }
    if (o.nuncio && want("registry")) {
      // issue 12: registry check-ins/s, memory then Redis, with only the origin up
      await stopAllButOrigin();
      registry = await runRegistryBench(registryOpts);
    }
    if (o.nuncio && want("control-plane")) {
      // control plane: snapshot build of 1,000 services, 100 ADS proxies' convergence, RSS; only the origin up
      await stopAllButOrigin();
      controlPlane = await runControlPlaneBench({
        ...CONTROL_PLANE_DEFAULTS,
        buildRounds: Math.min(CONTROL_PLANE_DEFAULTS.buildRounds, o.rounds),
        changes: Math.min(CONTROL_PLANE_DEFAULTS.changes, o.rounds),
        nuncioBin: o.nuncioBin,
        keep: o.keep,
      });
    }
    if (o.nuncio && want("tracing")) {
      // issue 16: req/s with zipkin tracing at 100 % sampling against without, same run, only the origin up
      await stopAllButOrigin();
      tracing = await runTracingBench(env, {
        launch,
        ...wrkLoad,
      }).catch((e) => {
        console.error(`tracing bench: ${(e as Error).message}`);
        return undefined;
      });
    }
    if (o.nuncio && want("mongo")) {
      // issue 14: Mongo round trips/s through nuncio's mongo_proxy against direct, only the origin up
      await stopAllButOrigin();
      mongoOpts = {
        durationMs: o.durationS * 1000,
        connections: 16,
        rounds: o.rounds,
        op: "find",
        nuncioBin: o.nuncioBin,
        dir,
      };
      mongo = await runMongoBench(mongoOpts);
    }
    if (o.nuncio && want("redis")) {
      // issue 14: redis-benchmark through nuncio's redis_proxy against twemproxy and direct, only the origin up
      await stopAllButOrigin();
      redisOpts = { requests: 200_000, clients: 50, pipelines: [1, 16], rounds: o.rounds, keyspace: 100_000 };
      redis = await runRedisBench(redisOpts).catch((e) => {
        console.error(`redis bench: ${(e as Error).message}`);
        return undefined;
      });
    }
    if (o.nuncio && want("startup")) {
      // issue 15: exec to serving and to /ready on the demo config, nothing else running
      await stopAllButOrigin();
      startup = await runStartupBench({ root: ROOT, bin: o.nuncioBin, rounds: Math.max(5, o.rounds) });
    }
    if (o.memory && (o.nuncio || o.compareMemory)) {
      // Free the CPU for the memory run: keep only the origin.
      await stopAllButOrigin();
      memory = await measureMemory(env, {
        launch: o.nuncio ? launch : undefined,
        origin,
        count: o.idleConns,
        compare: o.compareMemory,
      });
    }
  } finally {
    await sup.dispose();
  }

  const byKey = (k: string) => targets.find((t) => t.key === k);
  const ratios = [
    ratio("http1 nuncio/nginx", byKey("nuncio-http"), byKey("nginx"), 0.6),
    ratio("tcp nuncio/haproxy-tcp", byKey("nuncio-tcp"), byKey("haproxy-tcp"), 0.8),
    ratio("resilience nuncio-resilient/nuncio", byKey("nuncio-resilient"), byKey("nuncio-http"), 0.9),
  ];
  if (targets.length > 0) {
    console.log(
      `\nwrk -t${o.threads} -c${o.connections} -d${o.durationS}s, median of ${o.rounds} round(s); ` +
        `+p50/+p99 = added vs direct origin; c=1 = one connection for ${o.c1S}s`,
    );
    console.log(formatTable(targets, byKey("direct")));
  }
  for (const t of targets) if (t.error && t.median) console.log(`note: ${t.label}: ${t.error}`);
  if (nuncioNote) console.log(nuncioNote);
  console.log("");
  const allRatios = !rlOnly && targets.length > 0;
  for (const r of ratios) if (allRatios || !Number.isNaN(r.value)) console.log(formatRatio(r));
  const floorRatio = ratio("http1 deno-floor/nginx", byKey("deno-floor"), byKey("nginx"), NaN);
  if (Number.isFinite(floorRatio.value)) console.log(formatRatio(floorRatio));
  if (byKey("nuncio-ratelimit")) {
    console.log(formatRatelimitCost(byKey("nuncio-ratelimit"), byKey("nuncio-http"), rlCalls));
  }
  if (h2?.targets.length) {
    console.log(`\n${formatH2Report(h2.targets, { ...o, clients: o.h2Clients, streams: o.h2Streams })}`);
    ratios.push(h2Ratios(h2.targets).h2);
  }
  if (compression) {
    console.log(`\n${formatCompression(compression)}`);
    ratios.push(compressionRatio(compression));
  }
  if (xds) {
    console.log(`\n${formatXdsReport(xds)}`);
    ratios.push(xdsChurnRatio(xds));
  }
  if (registry) console.log(`\n${formatRegistry(registry, registryOpts)}`);
  if (controlPlane) console.log(`\n${formatControlPlane(controlPlane)}`);
  if (tracing) {
    console.log(`\n${formatTracingBench(tracing)}`);
    ratios.push(tracing.ratio);
  }
  if (mongo && mongoOpts) console.log(`\n${formatMongoBench(mongo, mongoOpts)}`);
  if (redis && redisOpts) console.log(`\n${formatRedisBench(redis, redisOpts)}`);
  if (startup) console.log(`\n${formatStartup(startup).join("\n")}`);
  if (memory) console.log(`\n${formatMemory(memory, o.idleConns)}`);
  if (rlOnly) {
    const d = { durationMs: Math.max(1, o.durationS / 4) * 1000, concurrency: 64, redis: true };
    console.log(`\n${formatDecisions(await runDecisionsBench(d), d)}`);
  }

  if (o.json) {
    const out = {
      date: new Date().toISOString(),
      options: o,
      cpus: navigator.hardwareConcurrency,
      targets,
      ratios,
      h2: h2?.targets,
      memory,
      xds,
      registry,
      controlPlane,
      compression,
      startup,
      mongo,
      redis,
      tracing,
    };
    Deno.writeTextFileSync(o.json, JSON.stringify(out, null, 2) + "\n");
    console.log(`\nwrote ${o.json}`);
  }
  const memFail = memory?.nuncio.some((r) => r.perConnKiB > 16) ||
    (memory?.idleRssKiB ?? 0) > IDLE_RSS_TARGET_MB * 1024;
  if (o.keep) console.log(`configs and logs kept in ${dir}`);
  else Deno.removeSync(dir, { recursive: true });
  const xdsFail = xds !== undefined && xdsFailed(xds);
  const registryFail = registry !== undefined && !registryPassed(registry);
  const controlPlaneFail = controlPlane !== undefined && !controlPlanePassed(controlPlane);
  const startupFail = startup !== undefined && !(median(startup.serveMs) <= STARTUP_TARGET_MS);
  return o.strict &&
      (ratios.some((r) => !r.pass) || memFail || xdsFail || registryFail || controlPlaneFail || startupFail)
    ? 1
    : 0;
}

if (import.meta.main) {
  try {
    Deno.exit(await main());
  } catch (e) {
    console.error(`bench failed: ${(e as Error).stack ?? e}`);
    Deno.exit(2);
  }
}
