/**
 * Redis proxy benchmark: `redis-benchmark -t get,set` against one redis-server directly, through nuncio's
 * envoy.filters.network.redis_proxy and through twemproxy (nutcracker), all started by this run on 127.0.0.1 with
 * ports from the OS. Both proxies shard over the same three redis-servers (nuncio: RING_HASH on Envoy's key hash;
 * twemproxy: ketama over murmur) with one connection per server and one thread (nuncio --concurrency 1). Targets
 * are measured in interleaved rounds; the median of each is reported as
 *   redis: nuncio/twemproxy GET = 1.0x (nuncio N/s, twemproxy M/s, direct D/s)
 *
 *   deno run -A bench/redis_bench.ts [--requests 200000] [--clients 50] [--pipeline 1,16] [--rounds 3]
 */
import { Supervisor, tailFile } from "./lib/proc.ts";
import { findFreePorts, waitForPort } from "./lib/net.ts";
import { findExecutable } from "./lib/tools.ts";
import { spawnNuncio } from "./targets.ts";

/** Options of the redis bench. */
export interface RedisBenchOptions {
  /** Requests per redis-benchmark run (-n). */
  requests: number;
  /** Parallel clients (-c). */
  clients: number;
  /** Pipeline depths (-P), one set of lines each. */
  pipelines: number[];
  /** Interleaved rounds per target (the median is kept). */
  rounds: number;
  /** Keyspace for -r (random keys spread over the shards). */
  keyspace: number;
}

/** Requests per second of one test on one target, and the proxies' CPU time per request (µs). */
export interface RedisBenchRow {
  pipeline: number;
  test: "GET" | "SET";
  nuncio: number;
  twemproxy: number;
  direct: number;
  /** CPU µs per request (user + system) of each proxy over its runs of both tests (median of rounds). */
  nuncioCpuUs: number;
  twemproxyCpuUs: number;
  /**
   * The 1-minute load average before and after this pipeline depth's rounds: on a small shared machine another
   * process's load swings these ratios by tens of percent, so a contended run shows as such.
   */
  load: [number, number];
}

function loadAverage(): number {
  try {
    return Deno.loadavg()[0];
  } catch {
    return NaN;
  }
}

/**
 * user + system CPU seconds of `pid` so far (/proc/<pid>/stat; 0 when unreadable). Read through `cat`: Deno
 * lets only --allow-all read /proc, and `deno task bench` runs with the narrower flags.
 */
function cpuSeconds(pid: number): number {
  try {
    const out = new Deno.Command("cat", { args: [`/proc/${pid}/stat`], stdout: "piped", stderr: "null" })
      .outputSync();
    if (!out.success) return 0;
    const stat = new TextDecoder().decode(out.stdout);
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}

const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? 0 : s[Math.floor(s.length / 2)];
}

/** Runs redis-benchmark once; returns requests/s per test (CSV output). */
async function redisBenchmark(
  port: number,
  o: RedisBenchOptions,
  pipeline: number,
): Promise<Map<string, number>> {
  const out = await new Deno.Command("redis-benchmark", {
    args: [
      "-h",
      "127.0.0.1",
      "-p",
      String(port),
      "-t",
      "get,set",
      "-n",
      String(o.requests),
      "-c",
      String(o.clients),
      "-P",
      String(pipeline),
      "-r",
      String(o.keyspace),
      "--csv",
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  const rates = new Map<string, number>();
  for (const line of text.split("\n")) {
    const m = line.match(/^"(GET|SET)","([\d.]+)"/);
    if (m) rates.set(m[1], Number(m[2]));
  }
  if (out.code !== 0 || rates.size !== 2) {
    throw new Error(`redis-benchmark on ${port} failed: ${text}${new TextDecoder().decode(out.stderr)}`);
  }
  return rates;
}

function nuncioYaml(admin: number, listen: number, servers: number[]): string {
  const endpoints = servers.map((p) =>
    `        - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: ${p} } } }`
  ).join("\n");
  return `admin:
  address: { socket_address: { address: 127.0.0.1, port_value: ${admin} } }
static_resources:
  listeners:
  - name: redis
    address: { socket_address: { address: 127.0.0.1, port_value: ${listen} } }
    filter_chains:
    - filters:
      - name: envoy.filters.network.redis_proxy
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.redis_proxy.v3.RedisProxy
          stat_prefix: bench
          settings: { op_timeout: 5s }
          prefix_routes: { catch_all_route: { cluster: shards } }
  clusters:
  - name: shards
    type: STATIC
    connect_timeout: 1s
    lb_policy: RING_HASH
    load_assignment:
      cluster_name: shards
      endpoints:
      - lb_endpoints:
${endpoints}
`;
}

function twemproxyYaml(listen: number, servers: number[]): string {
  return `bench:
  listen: 127.0.0.1:${listen}
  hash: murmur
  distribution: ketama
  redis: true
  auto_eject_hosts: false
  server_connections: 1
  timeout: 5000
  servers:
${servers.map((p, i) => `   - 127.0.0.1:${p}:1 s${i}`).join("\n")}
`;
}

/** Starts the servers and proxies, measures, stops everything; resolves with one row per pipeline and test. */
export async function runRedisBench(o: RedisBenchOptions): Promise<RedisBenchRow[]> {
  for (const bin of ["redis-server", "redis-benchmark"]) {
    if (!findExecutable(bin)) throw new Error(`${bin} not found (apt-get install redis-server redis-tools)`);
  }
  const nutcracker = findExecutable("nutcracker");
  if (!nutcracker) throw new Error("nutcracker not found (apt-get install nutcracker)");
  const dir = await Deno.makeTempDir({ prefix: "nuncio_redisbench_" });
  const sup = new Supervisor();
  const [p1, p2, p3, nuncioPort, adminPort, twemPort, twemStats] = findFreePorts(7);
  const servers = [p1, p2, p3];
  try {
    for (const p of servers) {
      const proc = sup.spawn(`redis-${p}`, "redis-server", [
        "--port",
        String(p),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
      ], { logPath: `${dir}/redis-${p}.log` });
      await waitForPort(p, { proc });
    }
    Deno.writeTextFileSync(`${dir}/twemproxy.yml`, twemproxyYaml(twemPort, servers));
    const twem = sup.spawn("twemproxy", nutcracker, [
      "-c",
      `${dir}/twemproxy.yml`,
      "-s",
      String(twemStats),
      "-a",
      "127.0.0.1",
      "-o",
      `${dir}/twemproxy.log`,
      "-p",
      `${dir}/twemproxy.pid`,
    ], { logPath: `${dir}/twemproxy.out` });
    await waitForPort(twemPort, { proc: twem });
    const env = { dir, sup, bins: { nginx: "", haproxy: "" }, nofile: 65536 };
    const nuncio = await spawnNuncio(
      env,
      { root: ROOT },
      "nuncio",
      nuncioYaml(adminPort, nuncioPort, servers),
      [
        nuncioPort,
      ],
    );
    const targets = { nuncio: nuncioPort, twemproxy: twemPort, direct: p1 } as const;
    const pids: Record<string, number> = { nuncio: nuncio.pid, twemproxy: twem.pid };
    // warm-up (JIT, connections)
    await redisBenchmark(nuncioPort, { ...o, requests: Math.min(o.requests, 50_000) }, 1);
    await redisBenchmark(twemPort, { ...o, requests: Math.min(o.requests, 50_000) }, 1);
    const rows: RedisBenchRow[] = [];
    for (const pipeline of o.pipelines) {
      const samples: Record<string, Record<string, number[]>> = {};
      const cpu: Record<string, number[]> = { nuncio: [], twemproxy: [] };
      const loadBefore = loadAverage();
      for (let r = 0; r < o.rounds; r++) {
        for (const [name, port] of Object.entries(targets)) {
          const before = pids[name] ? cpuSeconds(pids[name]) : 0;
          const rates = await redisBenchmark(port, o, pipeline);
          if (pids[name]) cpu[name].push(((cpuSeconds(pids[name]) - before) * 1e6) / (2 * o.requests));
          for (const [test, v] of rates) ((samples[name] ??= {})[test] ??= []).push(v);
        }
      }
      const load: [number, number] = [loadBefore, loadAverage()];
      for (const test of ["GET", "SET"] as const) {
        rows.push({
          pipeline,
          test,
          nuncio: median(samples.nuncio[test]),
          twemproxy: median(samples.twemproxy[test]),
          direct: median(samples.direct[test]),
          nuncioCpuUs: median(cpu.nuncio),
          twemproxyCpuUs: median(cpu.twemproxy),
          load,
        });
      }
    }
    if (nuncio.exited()) throw new Error(`nuncio exited: ${tailFile(nuncio.logPath)}`);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    return rows;
  } finally {
    await sup.stopAll();
  }
}

/** The ratio lines, one per pipeline depth and test. */
export function formatRedisBench(rows: RedisBenchRow[], o: RedisBenchOptions): string {
  const f = (n: number) => Math.round(n).toString();
  return rows.map((r) =>
    `redis: nuncio/twemproxy ${r.test}${r.pipeline > 1 ? ` -P ${r.pipeline}` : ""} = ${
      (r.nuncio / r.twemproxy).toFixed(2)
    }x (nuncio ${f(r.nuncio)}/s, twemproxy ${f(r.twemproxy)}/s, direct ${
      f(r.direct)
    }/s; -c ${o.clients} -n ${o.requests}, ${o.rounds} rounds; CPU per request: nuncio ${
      r.nuncioCpuUs.toFixed(1)
    } us, twemproxy ${r.twemproxyCpuUs.toFixed(1)} us; load ${r.load[0].toFixed(1)} -> ${
      r.load[1].toFixed(1)
    })`
  ).join("\n");
}

if (import.meta.main) {
  const flag = (name: string, def: string) => {
    const i = Deno.args.indexOf(name);
    return i >= 0 ? Deno.args[i + 1] : def;
  };
  const o: RedisBenchOptions = {
    requests: Number(flag("--requests", "200000")),
    clients: Number(flag("--clients", "50")),
    pipelines: flag("--pipeline", "1,16").split(",").map(Number),
    rounds: Number(flag("--rounds", "3")),
    keyspace: Number(flag("--keyspace", "100000")),
  };
  console.log(formatRedisBench(await runRedisBench(o), o));
}
