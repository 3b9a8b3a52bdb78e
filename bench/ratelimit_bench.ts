/**
 * Rate-limit service benchmark: decisions per second with in-memory and with Redis counters (a real
 * redis-server started here on a free port), through three entry points:
 *   - direct: `service.handleShouldRateLimit(bytes)` (protobuf decode + decide + encode, no transport)
 *   - gRPC: h2c unary calls from one node:http2 client session (the transport is node:http2 for now)
 *   - /json: POST /json over HTTP/1.1 with fetch
 * Each runs `--concurrency` calls in flight (default 64) for `--duration` seconds (default 2) over 1000
 * distinct descriptor values, one hour-long limit that is never reached.
 *
 *   deno run -A bench/ratelimit_bench.ts [--duration 2] [--concurrency 64] [--no-redis]
 */
import { encodeRateLimitRequest, SHOULD_RATE_LIMIT_PATH } from "../src/ratelimit/rls_proto.ts";
import { startRatelimitService } from "../src/ratelimit/run.ts";
import { startRedis } from "../src/ratelimit/test_redis.ts";
import { setLogLevel } from "../src/common/log.ts";
import { grpcCall } from "../tests/ratelimit_helpers.ts";
import http2 from "node:http2";
import { encodeGrpcFrame } from "../src/grpc/frame.ts";

function flag(name: string, def: number): number {
  const i = Deno.args.indexOf(name);
  return i >= 0 ? Number(Deno.args[i + 1]) : def;
}
const DURATION_MS = flag("--duration", 2) * 1000;
const CONCURRENCY = flag("--concurrency", 64);
const WITH_REDIS = !Deno.args.includes("--no-redis");
setLogLevel("error");

const VALUES = 1000;
const bodies = Array.from({ length: VALUES }, (_, i) =>
  encodeRateLimitRequest({
    domain: "bench",
    descriptors: [{ entries: [{ key: "remote_address", value: `10.0.${i >> 8}.${i & 255}` }] }],
    hitsAddend: 1,
  }));
const jsonBodies = Array.from({ length: VALUES }, (_, i) =>
  JSON.stringify({
    domain: "bench",
    descriptors: [{ entries: [{ key: "remote_address", value: `10.0.${i >> 8}.${i & 255}` }] }],
  }));

/** Runs `one(i)` with CONCURRENCY in flight for DURATION_MS; returns calls per second. */
async function measure(one: (i: number) => Promise<unknown>): Promise<number> {
  // warm-up
  for (let i = 0; i < 200; i++) await one(i);
  let n = 0;
  const end = performance.now() + DURATION_MS;
  const start = performance.now();
  const lane = async (k: number) => {
    let i = k;
    while (performance.now() < end) {
      await one(i++ % VALUES);
      n++;
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, (_, k) => lane(k)));
  return n / ((performance.now() - start) / 1000);
}

function h2Client(port: number) {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  const call = (body: Uint8Array) =>
    new Promise<void>((resolve, reject) => {
      const s = session.request({
        ":method": "POST",
        ":path": SHOULD_RATE_LIMIT_PATH,
        "content-type": "application/grpc",
        te: "trailers",
      });
      s.on("data", () => {});
      s.on("error", reject);
      s.on("close", () => resolve());
      s.end(encodeGrpcFrame(body));
    });
  return { call, close: () => new Promise<void>((r) => session.close(() => r())) };
}

/** Server-side gRPC rate with h2load (one fixed request body), or undefined when h2load is missing. */
async function h2load(port: number): Promise<number | undefined> {
  const body = `${dir}/req.bin`;
  await Deno.writeFile(body, encodeGrpcFrame(bodies[0]));
  const n = Math.max(2000, Math.round(DURATION_MS * 5));
  let out;
  try {
    out = await new Deno.Command("h2load", {
      args: [
        "-n",
        String(n),
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
  if (!m || !/(\d+) succeeded/.test(text)) return undefined;
  return Number(m[1]);
}

const dir = await Deno.makeTempDir({ prefix: "nuncio_rlbench_" });
const limits = `${dir}/limits.yaml`;
await Deno.writeTextFile(
  limits,
  "domain: bench\ndescriptors:\n  - key: remote_address\n    rate_limit: { unit: hour, requests_per_unit: 100000000 }\n",
);
const redis = WITH_REDIS ? await startRedis() : undefined;
const rows: [string, string, number][] = [];
try {
  for (const store of WITH_REDIS ? ["memory", "redis"] : ["memory"]) {
    const svc = await startRatelimitService({
      limitsPath: limits,
      redisUrl: store === "redis" ? redis!.url : undefined,
      grpcPort: 0,
      httpPort: 0,
      watchIntervalMs: 0,
    });
    try {
      // sanity: one call over gRPC answers OK
      const probe = await grpcCall(svc.grpcPort!, SHOULD_RATE_LIMIT_PATH, bodies[0]);
      if (probe.status !== 0) throw new Error(`gRPC probe failed: ${probe.status} ${probe.message}`);
      rows.push([store, "direct", await measure((i) => svc.service.handleShouldRateLimit(bodies[i]))]);
      const h2 = h2Client(svc.grpcPort!);
      rows.push([store, "gRPC (node:http2 client)", await measure((i) => h2.call(bodies[i]))]);
      await h2.close();
      const viaH2load = await h2load(svc.grpcPort!);
      if (viaH2load !== undefined) rows.push([store, "gRPC (h2load -c4 -m16)", viaH2load]);
      const url = `http://127.0.0.1:${svc.httpPort}/json`;
      rows.push([
        store,
        "POST /json (fetch)",
        await measure(async (i) => {
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

console.log(
  `\nrate-limit decisions/s (${CONCURRENCY} in flight, ${
    DURATION_MS / 1000
  } s each, ${navigator.hardwareConcurrency} cores)\n`,
);
console.log("counters  entry point                   decisions/s");
for (const [store, entry, rate] of rows) {
  console.log(
    `${store.padEnd(9)} ${entry.padEnd(29)} ${Math.round(rate).toLocaleString("en-US").padStart(11)}`,
  );
}
