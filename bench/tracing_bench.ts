/**
 * Tracing cost: req/s of nuncio with HCM tracing at 100 % random sampling (envoy.tracers.zipkin, spans batched
 * to an nginx collector answering 202 on /api/v2/spans) against the same nuncio config without tracing, both in
 * front of one nginx origin, measured with wrk in interleaved rounds of the same run. Prints
 * `ratio tracing on/off = X (target >= 0.85)`. Standalone: `deno run -A bench/tracing_bench.ts [--rounds 5]
 * [--duration 5] [--connections 64] [--nuncio-bin path]`.
 */

import { findFreePorts, waitForPort } from "./lib/net.ts";
import { type Managed, Supervisor } from "./lib/proc.ts";
import { findExecutable } from "./lib/tools.ts";
import { median, runWrk } from "./lib/wrk.ts";
import { formatRatio, type Ratio, ratio, type TargetResult } from "./report.ts";
import {
  type Env,
  type NuncioLaunch,
  spawnNuncio,
  startOrigin,
  yamlAdmin,
  yamlHcmListener,
  yamlStaticCluster,
} from "./targets.ts";

/** Goal of `ratio tracing on/off`. */
export const TRACING_RATIO_TARGET = 0.85;

/** Load settings. */
export interface TracingBenchOptions {
  launch: NuncioLaunch;
  rounds: number;
  durationS: number;
  warmupS: number;
  connections: number;
  threads: number;
}

/** What the bench measured. */
export interface TracingBenchResult {
  /** nuncio without tracing, then with tracing. */
  targets: TargetResult[];
  ratio: Ratio;
  /** Spans the traced nuncio reported it sent (from its admin stats), -1 when unknown. */
  spansSent: number;
  /** Reports (POSTs) the collector accepted, -1 when unknown. */
  reportsSent: number;
  /** Reports refused or lost (zipkin reports_dropped + reports_failed), -1 when unknown. */
  reportsLost: number;
}

/**
 * nginx collector: 202 for POST /api/v2/spans, the body discarded. Bodies up to 64 MiB (nginx's default 1 MiB
 * answered 413 to the larger reports a burst makes, which the tracer counts as dropped: not a collector's norm).
 */
function collectorConfig(env: Env, port: number): string {
  return `worker_processes 1;
daemon off;
master_process on;
pid ${env.dir}/collector.pid;
error_log ${env.dir}/collector.error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  keepalive_timeout 300s;
  keepalive_requests 1000000;
  client_max_body_size 64m;
  client_body_temp_path ${env.dir}/collector.body;
  proxy_temp_path ${env.dir}/collector.proxy;
  fastcgi_temp_path ${env.dir}/collector.fastcgi;
  uwsgi_temp_path ${env.dir}/collector.uwsgi;
  scgi_temp_path ${env.dir}/collector.scgi;
  server {
    listen 127.0.0.1:${port};
    location /api/v2/spans { return 202; }
  }
}
`;
}

/** The bench bootstrap: HCM -> router -> origin, with (or without) zipkin tracing at 100 %. */
export function tracingConfig(
  ports: { admin: number; http: number; origin: number; collector: number },
  tracing: boolean,
): string {
  const hcm = tracing
    ? `          tracing:
            random_sampling: {value: 100}
            provider:
              name: envoy.tracers.zipkin
              typed_config:
                "@type": type.googleapis.com/envoy.config.trace.v3.ZipkinConfig
                collector_cluster: collector
                collector_endpoint: /api/v2/spans
                collector_endpoint_version: HTTP_JSON
`
    : "";
  return `${yamlAdmin(ports.admin)}node: {id: bench, cluster: bench}
static_resources:
  listeners:
${yamlHcmListener("http", ports.http, { statPrefix: "bench", hcm })}  clusters:
${yamlStaticCluster("origin", ports.origin)}${yamlStaticCluster("collector", ports.collector)}`;
}

async function zipkinStats(adminPort: number): Promise<{ spans: number; reports: number; lost: number }> {
  try {
    const r = await fetch(`http://127.0.0.1:${adminPort}/stats?filter=tracing.zipkin`);
    const text = await r.text();
    const stat = (name: string) => {
      const m = new RegExp(`tracing\\.zipkin\\.${name}: (\\d+)`).exec(text);
      return m ? Number(m[1]) : -1;
    };
    const dropped = stat("reports_dropped"), failed = stat("reports_failed");
    return {
      spans: stat("spans_sent"),
      reports: stat("reports_sent"),
      lost: dropped < 0 || failed < 0 ? -1 : dropped + failed,
    };
  } catch {
    return { spans: -1, reports: -1, lost: -1 };
  }
}

/**
 * Starts the origin, the collector and two nuncio processes (tracing off and on), warms both, then measures them
 * in interleaved rounds; never throws for a target (its `error` says why).
 */
export async function runTracingBench(env: Env, o: TracingBenchOptions): Promise<TracingBenchResult> {
  const [origin, collector, off, on, adminOff, adminOn] = findFreePorts(6);
  const targets: TargetResult[] = [
    { key: "nuncio-tracing-off", label: "nuncio tracing off", port: off, runs: [], errors: 0 },
    { key: "nuncio-tracing-on", label: "nuncio tracing on (100 %)", port: on, runs: [], errors: 0 },
  ];
  const procs: Managed[] = [];
  let sent = { spans: -1, reports: -1, lost: -1 };
  try {
    procs.push((await startOrigin(env, origin)).proc);
    const conf = `${env.dir}/collector.conf`;
    Deno.writeTextFileSync(conf, collectorConfig(env, collector));
    procs.push(env.sup.spawn("collector", env.bins.nginx, ["-p", env.dir, "-c", conf], {
      nofile: env.nofile,
      logPath: `${env.dir}/collector.log`,
    }));
    await waitForPort(collector, { proc: procs[procs.length - 1] });
    const specs: [TargetResult, number, boolean][] = [[targets[0], adminOff, false], [
      targets[1],
      adminOn,
      true,
    ]];
    for (const [t, admin, tracing] of specs) {
      try {
        const cfg = tracingConfig({ admin, http: t.port, origin, collector }, tracing);
        procs.push(await spawnNuncio(env, o.launch, t.key, cfg, [t.port]));
      } catch (e) {
        t.error = (e as Error).message.split("\n").slice(0, 6).join(" | ");
      }
    }
    const live = targets.filter((t) => !t.error);
    const wrk = (t: TargetResult, durationS: number) =>
      runWrk({
        url: `http://127.0.0.1:${t.port}/`,
        connections: o.connections,
        threads: o.threads,
        durationS,
      });
    for (const t of live) {
      if (o.warmupS > 0) await wrk(t, o.warmupS).catch((e) => (t.error = (e as Error).message));
    }
    for (let round = 1; round <= o.rounds; round++) {
      for (const t of round % 2 === 1 ? live : [...live].reverse()) {
        if (t.error) continue;
        try {
          const r = await wrk(t, o.durationS);
          t.runs.push(r);
          t.errors += r.socketErrors + r.non2xx;
          console.error(`round ${round}/${o.rounds} ${t.label}: ${Math.round(r.rps)} req/s`);
        } catch (e) {
          t.error = (e as Error).message;
        }
      }
    }
    for (const t of targets) {
      if (t.runs.length > 0) {
        t.median = {
          rps: median(t.runs.map((r) => r.rps)),
          p50Us: median(t.runs.map((r) => r.p50Us)),
          p99Us: median(t.runs.map((r) => r.p99Us)),
        };
      }
    }
    sent = await zipkinStats(adminOn);
  } finally {
    for (const p of procs.reverse()) await p.stop().catch(() => {});
  }
  return {
    targets,
    ratio: ratio("tracing on/off", targets[1], targets[0], TRACING_RATIO_TARGET),
    spansSent: sent.spans,
    reportsSent: sent.reports,
    reportsLost: sent.lost,
  };
}

/** The report lines. */
export function formatTracingBench(r: TracingBenchResult): string {
  const lines = r.targets.map((t) =>
    `${t.label.padEnd(28)} ${
      t.error ? `error: ${t.error}` : `${Math.round(t.median?.rps ?? 0)} req/s (errors ${t.errors})`
    }`
  );
  lines.push(
    `spans sent by the traced nuncio: ${r.spansSent} in ${r.reportsSent} reports (${r.reportsLost} lost)`,
  );
  lines.push(formatRatio(r.ratio));
  return lines.join("\n");
}

if (import.meta.main) {
  const flag = (name: string, def: string) => {
    const i = Deno.args.indexOf(name);
    return i >= 0 ? Deno.args[i + 1] : def;
  };
  const nginx = findExecutable("nginx");
  if (nginx === undefined || findExecutable("wrk") === undefined) {
    console.error("tracing bench needs nginx and wrk on PATH");
    Deno.exit(1);
  }
  const sup = new Supervisor();
  const dir = await Deno.makeTempDir({ prefix: "nuncio_tracing_bench_" });
  const env: Env = {
    dir,
    sup,
    bins: { nginx, haproxy: findExecutable("haproxy") ?? "haproxy" },
    nofile: 65536,
  };
  const root = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
  try {
    const r = await runTracingBench(env, {
      launch: { root, bin: Deno.args.includes("--nuncio-bin") ? flag("--nuncio-bin", "") : undefined },
      rounds: Number(flag("--rounds", "5")),
      durationS: Number(flag("--duration", "5")),
      warmupS: Number(flag("--warmup", "2")),
      connections: Number(flag("--connections", "64")),
      threads: Number(flag("--threads", "1")),
    });
    console.log(formatTracingBench(r));
  } finally {
    await sup.stopAll();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}
