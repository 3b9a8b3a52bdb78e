/**
 * Mongo round trips per second, direct to a Mongo server against through nuncio. Each of these runs in its own
 * process (none shares an event loop with another):
 *   - the server: tests/mongo_wire_server.ts (the test suite's MongoDB wire-protocol server, in-memory);
 *   - nuncio (`--concurrency 1`, or `--nuncio-bin`) with two listeners to a STATIC cluster `mongo`:
 *     `mongo` (envoy.filters.network.mongo_proxy, stat_prefix `bench` -> tcp_proxy) and `tcp` (tcp_proxy alone,
 *     to show what sniffing costs);
 *   - the load: this file with `--client`, `--connections` raw connections each sending one OP_MSG at a time
 *     (default: a `find` by `_id` with a JSON call-site comment, answered with one document; `--op ping` for
 *     the smallest command) and counting replies for `--duration` seconds.
 * Targets are measured in interleaved rounds (reversed every other round) after a warm-up; figures are the
 * median over rounds, the ratio the median of the per-round ratios.
 *
 *   deno run -A bench/mongo_bench.ts [--duration 3] [--connections 16] [--rounds 3] [--op find|ping]
 *                                    [--nuncio-bin PATH]
 *
 * Prints `mongo: nuncio/direct round trips/s = 0.xx (nuncio N/s, direct M/s)`. When nuncio cannot load the
 * mongo_proxy listener (the filter is not registered), that line says n/a with the reason and the tcp_proxy
 * line still runs.
 */
import { Supervisor, tailFile } from "./lib/proc.ts";
import { findFreePorts, waitForPort } from "./lib/net.ts";
import { yamlAdmin, yamlStaticCluster } from "./targets.ts";
import { median } from "./lib/wrk.ts";
import { frame, legacy, OP, WireClient } from "../tests/mongo_wire_server.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const SERVER = `${ROOT}tests/mongo_wire_server.ts`;
const SELF = new URL(import.meta.url).pathname;

/** Options of runMongoBench. */
export interface MongoBenchOptions {
  /** Length of one measured run. */
  durationMs: number;
  /** Concurrent connections of the load process (one request in flight on each). */
  connections: number;
  rounds: number;
  /** The request: a find by _id with a call-site comment (default), or ping. */
  op: "find" | "ping";
  /** A compiled nuncio; `deno run main.ts` otherwise. */
  nuncioBin?: string;
  /** Where logs go (a temp dir by default). */
  dir?: string;
}

/** The figures (round trips per second; NaN when a target could not run). */
export interface MongoBenchResult {
  direct: number;
  nuncio: number;
  tcpOnly: number;
  /** Median of the per-round nuncio/direct ratios. */
  ratio: number;
  /** Median of the per-round mongo_proxy/tcp_proxy ratios. */
  sniffRatio: number;
  rounds: { direct: number; nuncio: number; tcpOnly: number }[];
  /** Why nuncio's mongo_proxy listener did not run, if it did not. */
  nuncioError?: string;
  /** Counters nuncio's admin showed after the runs (mongo.bench.op_msg, ...). */
  stats: Record<string, number>;
  errors: number;
}

/** One load run's outcome (what the `--client` process prints as JSON). */
interface LoadResult {
  roundTrips: number;
  errors: number;
  seconds: number;
}

const CALLSITE = JSON.stringify({ callingFunction: "benchFind" });

/** The request message of `op` (requestId patched per send). */
function requestFrame(op: "find" | "ping"): Uint8Array {
  const doc = op === "ping"
    ? { ping: 1, $db: "admin" }
    : { find: "items", filter: { _id: 1 }, limit: 1, singleBatch: true, comment: CALLSITE, $db: "bench" };
  return frame(OP.MSG, 1, legacy.msg(doc));
}

/** The load itself: `connections` lanes, each sending one request and reading its reply, until the deadline. */
async function load(
  port: number,
  connections: number,
  durationMs: number,
  op: "find" | "ping",
): Promise<LoadResult> {
  const conns = await Promise.all(Array.from({ length: connections }, () => WireClient.connect(port)));
  let roundTrips = 0, errors = 0;
  const start = performance.now();
  const end = start + durationMs;
  const lane = async (c: WireClient, index: number) => {
    const msg = requestFrame(op);
    const view = new DataView(msg.buffer);
    const buf = new Uint8Array(64 * 1024);
    let id = index * 1_000_000;
    try {
      while (performance.now() < end) {
        view.setInt32(4, ++id, true);
        let off = 0;
        while (off < msg.length) off += await c.conn.write(msg.subarray(off));
        // read exactly one reply (no pipelining: one request in flight per connection)
        let have = 0;
        let need = 4;
        while (have < need) {
          const n = await c.conn.read(buf.subarray(have));
          if (n === null) throw new Error("closed");
          have += n;
          if (have >= 4) need = new DataView(buf.buffer).getInt32(0, true);
        }
        const v = new DataView(buf.buffer);
        if (v.getInt32(8, true) !== id || v.getInt32(12, true) !== OP.MSG) errors++;
        else roundTrips++;
      }
    } catch {
      errors++;
    }
  };
  await Promise.all(conns.map((c, i) => lane(c, i)));
  const seconds = (performance.now() - start) / 1000;
  for (const c of conns) c.close();
  return { roundTrips, errors, seconds };
}

/** Runs the load in its own process against `port`; returns round trips per second. */
async function runLoad(
  port: number,
  o: Pick<MongoBenchOptions, "connections" | "durationMs" | "op">,
): Promise<LoadResult> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      SELF,
      "--client",
      String(port),
      "--connections",
      String(o.connections),
      "--duration",
      String(o.durationMs / 1000),
      "--op",
      o.op,
    ],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout).trim();
  if (!out.success) throw new Error(`load process failed: ${new TextDecoder().decode(out.stderr)}`);
  return JSON.parse(text.split("\n").at(-1)!);
}

function nuncioConfig(
  ports: { admin: number; mongo: number; tcp: number; server: number },
  withMongo: boolean,
): string {
  const mongoListener = `  - name: mongo
    address: {socket_address: {address: 127.0.0.1, port_value: ${ports.mongo}}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.mongo_proxy
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.mongo_proxy.v3.MongoProxy
          stat_prefix: bench
      - name: envoy.filters.network.tcp_proxy
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
          stat_prefix: benchmongo
          cluster: mongo
`;
  return `${yamlAdmin(ports.admin)}static_resources:
  listeners:
${withMongo ? mongoListener : ""}  - name: tcp
    address: {socket_address: {address: 127.0.0.1, port_value: ${ports.tcp}}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.tcp_proxy
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
          stat_prefix: benchtcp
          cluster: mongo
  clusters:
${yamlStaticCluster("mongo", ports.server)}`;
}

/** Reads nuncio's admin `/stats` and returns the `mongo.bench.*` and `tcp.bench*` counters. */
async function adminStats(port: number): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  try {
    const r = await fetch(`http://127.0.0.1:${port}/stats`);
    for (const line of (await r.text()).split("\n")) {
      const m = /^((?:mongo\.bench|tcp\.bench\w*)\.[\w.]+): (\d+)$/.exec(line.trim());
      if (m) out[m[1]] = Number(m[2]);
    }
  } catch {
    // admin not reachable: no stats
  }
  return out;
}

/** Starts the server and nuncio, measures, stops everything. */
export async function runMongoBench(o: MongoBenchOptions): Promise<MongoBenchResult> {
  const dir = o.dir ?? await Deno.makeTempDir({ prefix: "nuncio-mongo-bench-" });
  const sup = new Supervisor();
  const [serverPort, admin, mongo, tcp] = findFreePorts(4);
  try {
    const server = sup.spawn("mongo-server", Deno.execPath(), ["run", "-A", SERVER, String(serverPort)], {
      cwd: ROOT,
      logPath: `${dir}/mongo-server.log`,
    });
    await waitForPort(serverPort, { proc: server, timeoutMs: 30_000 });
    {
      using c = await WireClient.connect(serverPort);
      await c.command("bench", { insert: "items", documents: [{ _id: 1, name: "bench", n: 42 }] });
    }

    const startNuncio = async (withMongo: boolean) => {
      const name = withMongo ? "nuncio" : "nuncio-tcp-only";
      const conf = `${dir}/${name}.yaml`;
      Deno.writeTextFileSync(conf, nuncioConfig({ admin, mongo, tcp, server: serverPort }, withMongo));
      const flags = ["-c", conf, "--concurrency", "1"];
      const [cmd, args] = o.nuncioBin
        ? [o.nuncioBin, flags]
        : [Deno.execPath(), ["run", "--allow-all", `${ROOT}main.ts`, ...flags]];
      const proc = sup.spawn(name, cmd, args, { cwd: ROOT, logPath: `${dir}/${name}.log`, nofile: 4096 });
      for (const p of withMongo ? [mongo, tcp] : [tcp]) await waitForPort(p, { proc, timeoutMs: 30_000 });
      return proc;
    };
    let nuncioError: string | undefined;
    try {
      await startNuncio(true);
    } catch (err) {
      nuncioError = `${(err as Error).message}\n${tailFile(`${dir}/nuncio.log`, 1500)}`.trim();
      await startNuncio(false);
    }

    const targets: [keyof MongoBenchResult["rounds"][number], number][] = [["direct", serverPort], [
      "tcpOnly",
      tcp,
    ]];
    if (!nuncioError) targets.splice(1, 0, ["nuncio", mongo]);
    let errors = 0;
    // warm-up: JIT and connection setup on every side
    for (const [, port] of targets) {
      errors += (await runLoad(port, { ...o, durationMs: Math.min(1000, o.durationMs) })).errors;
    }
    const rounds: MongoBenchResult["rounds"] = [];
    for (let r = 0; r < o.rounds; r++) {
      const row = { direct: NaN, nuncio: NaN, tcpOnly: NaN };
      for (const [key, port] of r % 2 === 0 ? targets : [...targets].reverse()) {
        const res = await runLoad(port, o);
        errors += res.errors;
        row[key] = res.roundTrips / res.seconds;
      }
      rounds.push(row);
    }
    const stats = await adminStats(admin);
    const med = (k: keyof MongoBenchResult["rounds"][number]) => median(rounds.map((r) => r[k]));
    return {
      direct: med("direct"),
      nuncio: nuncioError ? NaN : med("nuncio"),
      tcpOnly: med("tcpOnly"),
      ratio: nuncioError ? NaN : median(rounds.map((r) => r.nuncio / r.direct)),
      sniffRatio: nuncioError ? NaN : median(rounds.map((r) => r.nuncio / r.tcpOnly)),
      rounds,
      nuncioError,
      stats,
      errors,
    };
  } finally {
    await sup.dispose();
    if (!o.dir) await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** The report lines. */
export function formatMongoBench(r: MongoBenchResult, o: MongoBenchOptions): string {
  const f = (n: number) => Number.isNaN(n) ? "n/a" : Math.round(n).toString();
  const what = o.op === "ping" ? "OP_MSG ping" : "OP_MSG find by _id with a call-site comment (1 document)";
  const lines = [
    `mongo: ${what}, ${o.connections} connections x 1 in flight, ${
      o.durationMs / 1000
    } s x ${o.rounds} round(s), median`,
    `  direct               ${f(r.direct).padStart(8)} round trips/s`,
    `  nuncio mongo_proxy   ${f(r.nuncio).padStart(8)} round trips/s`,
    `  nuncio tcp_proxy     ${f(r.tcpOnly).padStart(8)} round trips/s`,
  ];
  const rounds = (k: "nuncio" | "tcpOnly", base: "direct" | "tcpOnly") =>
    r.rounds.map((x) => (x[k] / x[base]).toFixed(2)).join(" ");
  if (r.nuncioError) {
    lines.push(
      `mongo: nuncio/direct round trips/s = n/a (the mongo_proxy listener did not start: ${
        r.nuncioError.split("\n")[0]
      })`,
    );
  } else {
    lines.push(
      `mongo: nuncio/direct round trips/s = ${r.ratio.toFixed(2)} (nuncio ${f(r.nuncio)}/s, direct ${
        f(r.direct)
      }/s)  [rounds: ${rounds("nuncio", "direct")}]`,
    );
    lines.push(
      `mongo: mongo_proxy/tcp_proxy = ${r.sniffRatio.toFixed(2)}  (what sniffing costs)  [rounds: ${
        rounds("nuncio", "tcpOnly")
      }]`,
    );
  }
  lines.push(
    `mongo: tcp_proxy/direct = ${median(r.rounds.map((x) => x.tcpOnly / x.direct)).toFixed(2)}  [rounds: ${
      rounds("tcpOnly", "direct")
    }]`,
  );
  const s = r.stats;
  if (s["mongo.bench.op_msg"] !== undefined) {
    lines.push(
      `  nuncio saw: mongo.bench.op_msg ${s["mongo.bench.op_msg"]}, op_msg_reply ${
        s["mongo.bench.op_msg_reply"] ?? 0
      }, ` +
        `collection.items.callsite.benchFind.query.total ${
          s["mongo.bench.collection.items.callsite.benchFind.query.total"] ?? 0
        }, decoding_error ${s["mongo.bench.decoding_error"] ?? 0}`,
    );
  }
  if (r.errors) lines.push(`  errors: ${r.errors}`);
  return lines.join("\n");
}

function flag(name: string, def: string): string {
  const i = Deno.args.indexOf(name);
  return i >= 0 ? Deno.args[i + 1] : def;
}

if (import.meta.main) {
  const op = flag("--op", "find") === "ping" ? "ping" : "find";
  const durationMs = Number(flag("--duration", "3")) * 1000;
  const connections = Number(flag("--connections", "16"));
  if (Deno.args.includes("--client")) {
    const port = Number(flag("--client", "0"));
    console.log(JSON.stringify(await load(port, connections, durationMs, op)));
  } else {
    const o: MongoBenchOptions = {
      durationMs,
      connections,
      rounds: Number(flag("--rounds", "3")),
      op,
      nuncioBin: Deno.args.includes("--nuncio-bin") ? flag("--nuncio-bin", "") : undefined,
    };
    console.log(formatMongoBench(await runMongoBench(o), o));
  }
}
