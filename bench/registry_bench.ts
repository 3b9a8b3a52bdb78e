/**
 * Registry check-ins per second (issue 12): `nuncio discovery` as a subprocess holding 10,000 hosts (100
 * services x 100 hosts, all registered first), then `concurrency` keep-alive HTTP/1.1 clients re-registering
 * those hosts round-robin (`POST /v1/registration/:service`) for `durationMs`, once with the memory store and,
 * when redis-server is there, once with Redis. Target: >= 2,000 check-ins/s sustained.
 *
 *   deno run -A bench/registry_bench.ts [--duration 3] [--hosts 10000] [--concurrency 32] [--no-redis]
 */
import { startRedis } from "../src/ratelimit/test_redis.ts";
import { ensureTools } from "./lib/tools.ts";

const ROOT = new URL("..", import.meta.url).pathname;

/** Options of runRegistryBench. */
export interface RegistryBenchOptions {
  durationMs: number;
  hosts: number;
  concurrency: number;
  redis: boolean;
  /** `deno run main.ts` unless a compiled binary is given. */
  nuncioBin?: string;
}

/** One store's figure (NaN with an error when it could not be measured). */
export interface RegistryBenchRow {
  store: "memory" | "redis";
  checkinsPerS: number;
  errors: number;
  error?: string;
}

/** The target of the line. */
export const REGISTRY_TARGET = 2000;

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const p = (l.addr as Deno.NetAddr).port;
  l.close();
  return p;
}

async function waitUp(url: string, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    try {
      const r = await fetch(url);
      await r.body?.cancel();
      if (r.ok) return;
    } catch {
      // not yet
    }
    if (Date.now() > end) throw new Error(`${url} did not come up`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function hostBody(i: number): [string, string] {
  const service = `svc-${i % 100}`;
  const ip = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
  return [service, JSON.stringify({ ip, port: 8080, tags: { az: `az-${i % 3}`, region: "r1" } })];
}

async function measureOne(o: RegistryBenchOptions, redisUrl?: string): Promise<[number, number]> {
  const port = freePort();
  const args = ["discovery", "--port", String(port), "--host", "127.0.0.1", "-l", "error"];
  if (redisUrl) args.push("--redis", redisUrl);
  const cmd = o.nuncioBin ?? Deno.execPath();
  const full = o.nuncioBin ? args : ["run", "-A", `${ROOT}main.ts`, ...args];
  const child = new Deno.Command(cmd, { args: full, stdout: "null", stderr: "null" }).spawn();
  try {
    const base = `http://127.0.0.1:${port}`;
    await waitUp(`${base}/healthcheck`);
    const bodies = Array.from({ length: o.hosts }, (_, i) => hostBody(i));
    let errors = 0;
    const runClients = async (next: () => number | undefined): Promise<number> => {
      let n = 0;
      await Promise.all(Array.from({ length: o.concurrency }, async () => {
        const client = Deno.createHttpClient({});
        try {
          for (let i = next(); i !== undefined; i = next()) {
            const [service, body] = bodies[i];
            const r = await fetch(`${base}/v1/registration/${service}`, { method: "POST", body, client });
            await r.arrayBuffer();
            if (r.ok) n++;
            else errors++;
          }
        } finally {
          client.close();
        }
      }));
      return n;
    };
    // fill: every host once
    let k = 0;
    await runClients(() => k < o.hosts ? k++ : undefined);
    // sustained check-ins of the same 10,000 hosts, round-robin
    let j = 0;
    const t0 = performance.now();
    const end = t0 + o.durationMs;
    const done = await runClients(() => performance.now() < end ? j++ % o.hosts : undefined);
    const secs = (performance.now() - t0) / 1000;
    const got = await (await fetch(`${base}/v1/registration/svc-0`)).json();
    if (got.hosts.length !== Math.ceil(o.hosts / 100)) errors++;
    return [done / secs, errors];
  } finally {
    child.kill("SIGTERM");
    await child.status;
  }
}

/** Measures the memory store, then Redis when asked and available. */
export async function runRegistryBench(o: RegistryBenchOptions): Promise<RegistryBenchRow[]> {
  const rows: RegistryBenchRow[] = [];
  const one = async (store: "memory" | "redis", url?: string) => {
    try {
      const [rate, errors] = await measureOne(o, url);
      rows.push({ store, checkinsPerS: rate, errors });
    } catch (e) {
      rows.push({ store, checkinsPerS: NaN, errors: 0, error: (e as Error).message });
    }
  };
  await one("memory");
  if (o.redis) {
    let redis;
    try {
      await ensureTools([{ bin: "redis-server", packages: ["redis-server"] }]);
      redis = await startRedis();
    } catch (e) {
      rows.push({ store: "redis", checkinsPerS: NaN, errors: 0, error: (e as Error).message });
    }
    if (redis) {
      try {
        await one("redis", redis.url);
      } finally {
        await redis.stop();
      }
    }
  }
  return rows;
}

/** True when every measured store meets the target. */
export function registryPassed(rows: RegistryBenchRow[]): boolean {
  return rows.every((r) => r.error !== undefined || (r.checkinsPerS >= REGISTRY_TARGET && r.errors === 0));
}

/** `registry check-ins/s (10000 hosts, memory) = N (target >= 2000) PASS|FAIL`, one line per store. */
export function formatRegistry(rows: RegistryBenchRow[], o: RegistryBenchOptions): string {
  return rows.map((r) => {
    const head = `registry check-ins/s (${o.hosts} hosts, ${r.store})`;
    if (r.error !== undefined) return `${head} = n/a (${r.error})`;
    const pass = r.checkinsPerS >= REGISTRY_TARGET && r.errors === 0;
    const errs = r.errors > 0 ? `, ${r.errors} errors` : "";
    return `${head} = ${Math.round(r.checkinsPerS)} (target >= ${REGISTRY_TARGET}${errs}) ${
      pass ? "PASS" : "FAIL"
    }`;
  }).join("\n");
}

if (import.meta.main) {
  const flag = (name: string, def: number) => {
    const i = Deno.args.indexOf(name);
    return i >= 0 ? Number(Deno.args[i + 1]) : def;
  };
  const o: RegistryBenchOptions = {
    durationMs: flag("--duration", 3) * 1000,
    hosts: flag("--hosts", 10_000),
    concurrency: flag("--concurrency", 32),
    redis: !Deno.args.includes("--no-redis"),
  };
  console.log(formatRegistry(await runRegistryBench(o), o));
}
