/**
 * Rate-limit service benchmark: decisions per second with in-memory and with Redis counters (a real
 * redis-server started here on a free port), through these entry points:
 *   - in-process: `service.shouldRateLimit(request)`, what the rate-limit filters call when the service is
 *     embedded on their own event loop (`--concurrency 1`): no protobuf, no transport
 *   - direct: `service.handleShouldRateLimit(bytes)` (protobuf decode + decide + encode, no transport)
 *   - gRPC (h2load): h2load -c4 -m16 against the service's gRPC port (nuncio's HTTP/2 codec, src/grpc/server.ts);
 *     the client runs in its own process, so this is the service's rate
 *   - gRPC (in-process client): unary calls over one H2ClientConnection from this process (client and server
 *     share one event loop: a lower bound)
 *   - /json: POST /json over HTTP/1.1 with fetch
 * Each runs `--concurrency` calls in flight (default 64) for `--duration` seconds (default 2) over 1000
 * distinct descriptor values, one hour-long limit that is never reached.
 *
 *   deno run -A bench/ratelimit_bench.ts [--duration 2] [--concurrency 64] [--no-redis]
 * `deno task bench --ratelimit` runs it too (bench/run.ts).
 */
import { encodeRateLimitRequest, SHOULD_RATE_LIMIT_PATH } from "../src/ratelimit/rls_proto.ts";
import { startRatelimitService } from "../src/ratelimit/run.ts";
import type { RateLimitRequest } from "../src/ratelimit/types.ts";
import { startRedis } from "../src/ratelimit/test_redis.ts";
import { setLogLevel } from "../src/common/log.ts";
import { encodeGrpcFrame } from "../src/grpc/frame.ts";
import { H2ClientConnection } from "../src/http/h2/client.ts";
import { requestHead } from "../src/http/h2/head.ts";
import type { H2Stream, H2StreamHandler } from "../src/http/h2/stream.ts";
import { HeaderMap } from "../src/http/headers.ts";

/** Options of the decisions/s bench. */
export interface DecisionsOptions {
  durationMs: number;
  concurrency: number;
  redis: boolean;
}

/** One result line: counter store, entry point, decisions per second. */
export type DecisionsRow = [store: string, entry: string, rate: number];

const VALUES = 1000;
const bodies = Array.from({ length: VALUES }, (_, i) =>
  encodeRateLimitRequest({
    domain: "bench",
    descriptors: [{ entries: [{ key: "remote_address", value: `10.0.${i >> 8}.${i & 255}` }] }],
    hitsAddend: 1,
  }));
const frames = bodies.map(encodeGrpcFrame);
const requests: RateLimitRequest[] = Array.from({ length: VALUES }, (_, i) => ({
  domain: "bench",
  descriptors: [{ entries: [{ key: "remote_address", value: `10.0.${i >> 8}.${i & 255}` }] }],
  hitsAddend: 0,
}));
const jsonBodies = Array.from({ length: VALUES }, (_, i) =>
  JSON.stringify({
    domain: "bench",
    descriptors: [{ entries: [{ key: "remote_address", value: `10.0.${i >> 8}.${i & 255}` }] }],
  }));

/** Runs `one(i)` with `concurrency` in flight for `durationMs`; returns calls per second. */
async function measure(o: DecisionsOptions, one: (i: number) => Promise<unknown>): Promise<number> {
  for (let i = 0; i < 200; i++) await one(i); // warm-up
  let n = 0;
  const start = performance.now();
  const end = start + o.durationMs;
  const lane = async (k: number) => {
    let i = k;
    while (performance.now() < end) {
      await one(i++ % VALUES);
      n++;
    }
  };
  await Promise.all(Array.from({ length: o.concurrency }, (_, k) => lane(k)));
  return n / ((performance.now() - start) / 1000);
}

/** One unary call on the in-process client: resolves with grpc-status. */
class Call implements H2StreamHandler {
  status = -1;
  readonly done: Promise<number>;
  #resolve!: (s: number) => void;
  constructor() {
    this.done = new Promise((r) => this.#resolve = r);
  }
  onHeaders(_st: H2Stream, head: { headers: HeaderMap }, end: boolean): void {
    if (end) this.#resolve(Number(head.headers.get("grpc-status") ?? 2));
  }
  onData(): void {}
  onTrailers(_st: H2Stream, t: HeaderMap): void {
    this.#resolve(Number(t.get("grpc-status") ?? 2));
  }
  onReset(): void {
    this.#resolve(14);
  }
}

async function h2Client(port: number) {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  conn.setNoDelay(true);
  const h2 = new H2ClientConnection(conn);
  const closed = h2.start();
  const headers = new HeaderMap();
  headers.addLower("content-type", "application/grpc");
  headers.addLower("te", "trailers");
  const head = requestHead("POST", SHOULD_RATE_LIMIT_PATH, "rls", headers);
  const call = async (i: number) => {
    const c = new Call();
    const st = h2.request(head, false, c);
    if (st === null) throw new Error("No stream capacity");
    st.sendData(frames[i], true);
    const s = await c.done;
    if (s !== 0) throw new Error(`gRPC status ${s}`);
  };
  return { call, close: () => (h2.close(), closed) };
}

/** Server-side gRPC rate with h2load (one fixed request body), or undefined when h2load is missing. */
async function h2load(dir: string, port: number, durationMs: number): Promise<number | undefined> {
  const body = `${dir}/req.bin`;
  await Deno.writeFile(body, frames[0]);
  let out;
  try {
    out = await new Deno.Command("h2load", {
      args: [
        "-D",
        String(Math.max(1, Math.round(durationMs / 1000))),
        "--warm-up-time",
        "1",
        "-c",
        "4",
        "-m",
        "16",
        "-d",
        body,
        "-H",
        "content-type: application/grpc",
        "-H",
        "te: trailers",
        `http://127.0.0.1:${port}${SHOULD_RATE_LIMIT_PATH}`,
      ],
      stderr: "null",
    }).output();
  } catch {
    return undefined;
  }
  const text = new TextDecoder().decode(out.stdout);
  const m = /finished in [\d.]+m?s, ([\d.]+) req\/s/.exec(text);
  const failed = /(\d+) failed/.exec(text);
  if (!m || !failed || failed[1] !== "0") return undefined;
  return Number(m[1]);
}

/** Measures every store and entry point; returns one row each. */
export async function runDecisionsBench(o: DecisionsOptions): Promise<DecisionsRow[]> {
  setLogLevel("error");
  const dir = await Deno.makeTempDir({ prefix: "nuncio_rlbench_" });
  const limits = `${dir}/limits.yaml`;
  await Deno.writeTextFile(
    limits,
    "domain: bench\ndescriptors:\n  - key: remote_address\n    rate_limit: { unit: hour, requests_per_unit: 100000000 }\n",
  );
  const redis = o.redis ? await startRedis() : undefined;
  const rows: DecisionsRow[] = [];
  try {
    for (const store of o.redis ? ["memory", "redis"] : ["memory"]) {
      const svc = await startRatelimitService({
        limitsPath: limits,
        redisUrl: store === "redis" ? redis!.url : undefined,
        grpcPort: 0,
        httpPort: 0,
        watchIntervalMs: 0,
      });
      try {
        rows.push([
          store,
          "in-process (filters' call)",
          await measure(o, (i) => Promise.resolve(svc.service.shouldRateLimit(requests[i]))),
        ]);
        rows.push([store, "direct", await measure(o, (i) => svc.service.handleShouldRateLimit(bodies[i]))]);
        const viaH2load = await h2load(dir, svc.grpcPort!, o.durationMs);
        if (viaH2load !== undefined) rows.push([store, "gRPC (h2load -c4 -m16)", viaH2load]);
        const h2 = await h2Client(svc.grpcPort!);
        rows.push([store, "gRPC (in-process h2 client)", await measure(o, h2.call)]);
        await h2.close();
        const url = `http://127.0.0.1:${svc.httpPort}/json`;
        rows.push([
          store,
          "POST /json (fetch)",
          await measure(o, async (i) => {
            const r = await fetch(url, { method: "POST", body: jsonBodies[i] });
            await r.arrayBuffer();
          }),
        ]);
      } finally {
        await svc.close();
      }
    }
  } finally {
    await redis?.stop();
    await Deno.remove(dir, { recursive: true });
  }
  return rows;
}

/** The report table. */
export function formatDecisions(rows: DecisionsRow[], o: DecisionsOptions): string {
  const lines = [
    `rate-limit decisions/s (${o.concurrency} in flight, ${o.durationMs / 1000} s each, ` +
    `${navigator.hardwareConcurrency} cores)`,
    "counters  entry point                   decisions/s",
  ];
  for (const [store, entry, rate] of rows) {
    lines.push(
      `${store.padEnd(9)} ${entry.padEnd(29)} ${Math.round(rate).toLocaleString("en-US").padStart(11)}`,
    );
  }
  return lines.join("\n");
}

if (import.meta.main) {
  const flag = (name: string, def: number) => {
    const i = Deno.args.indexOf(name);
    return i >= 0 ? Number(Deno.args[i + 1]) : def;
  };
  const o: DecisionsOptions = {
    durationMs: flag("--duration", 2) * 1000,
    concurrency: flag("--concurrency", 64),
    redis: !Deno.args.includes("--no-redis"),
  };
  console.log(`\n${formatDecisions(await runDecisionsBench(o), o)}`);
}
