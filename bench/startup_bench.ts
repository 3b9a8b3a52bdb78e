/**
 * Start-up (issue 15): time from exec to the first listener accepting and to admin /ready answering 200, for
 * the demo config (config/demo.yaml on free ports) with --concurrency 1, median of `rounds` fresh starts.
 * Runnable alone: `deno run -A bench/startup_bench.ts [rounds]`.
 */
import { findFreePorts } from "./lib/net.ts";

/** What a run measured, in milliseconds per round. */
export interface StartupResult {
  serveMs: number[];
  readyMs: number[];
  error?: string;
}

/** The target: exec to serving the demo config. */
export const STARTUP_TARGET_MS = 300;

/** Options of runStartupBench. */
export interface StartupOptions {
  /** Repository root (main.ts, config/demo.yaml). */
  root: string;
  /** A compiled binary instead of `deno run main.ts`. */
  bin?: string;
  rounds: number;
}

async function until(f: () => Promise<boolean>, deadline: number): Promise<void> {
  while (!(await f())) {
    if (performance.now() > deadline) throw new Error("nuncio did not start within 30 s");
    await new Promise((r) => setTimeout(r, 1));
  }
}

/** Starts nuncio `rounds` times on the demo config and times each start. */
export async function runStartupBench(o: StartupOptions): Promise<StartupResult> {
  const result: StartupResult = { serveMs: [], readyMs: [] };
  const dir = await Deno.makeTempDir({ prefix: "nuncio_startup_" });
  try {
    for (let i = 0; i < o.rounds; i++) {
      const [edge, origin, tcp, admin] = findFreePorts(4);
      const conf = `${dir}/demo.yaml`;
      Deno.writeTextFileSync(
        conf,
        Deno.readTextFileSync(`${o.root}/config/demo.yaml`)
          .replaceAll("port_value: 10000", `port_value: ${edge}`)
          .replaceAll("port_value: 10001", `port_value: ${origin}`)
          .replaceAll("port_value: 10002", `port_value: ${tcp}`)
          .replaceAll("port_value: 9901", `port_value: ${admin}`),
      );
      const flags = ["-c", conf, "--concurrency", "1", "-l", "warn"];
      const [cmd, args] = o.bin
        ? [o.bin, flags]
        : [Deno.execPath(), ["run", "--allow-all", `${o.root}/main.ts`, ...flags]];
      const t0 = performance.now();
      const proc = new Deno.Command(cmd, { args, stdin: "null", stdout: "null", stderr: "null" }).spawn();
      try {
        const deadline = t0 + 30_000;
        await until(async () => {
          try {
            (await Deno.connect({ hostname: "127.0.0.1", port: edge })).close();
            return true;
          } catch {
            return false;
          }
        }, deadline);
        result.serveMs.push(performance.now() - t0);
        await until(async () => {
          try {
            const r = await fetch(`http://127.0.0.1:${admin}/ready`);
            await r.body?.cancel();
            return r.status === 200;
          } catch {
            return false;
          }
        }, deadline);
        result.readyMs.push(performance.now() - t0);
      } finally {
        proc.kill("SIGTERM");
        await proc.status;
      }
    }
  } catch (e) {
    result.error = (e as Error).message;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  return result;
}

function median(v: number[]): number {
  const s = [...v].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.floor(s.length / 2)];
}

/** The report lines. */
export function formatStartup(r: StartupResult): string[] {
  if (r.error) return [`startup: ${r.error}`];
  const serve = median(r.serveMs);
  const ready = median(r.readyMs);
  return [
    `startup exec to serving = ${serve.toFixed(0)} ms (target <= ${STARTUP_TARGET_MS} ms) ${
      serve <= STARTUP_TARGET_MS ? "PASS" : "FAIL"
    }  [rounds: ${r.serveMs.map((v) => v.toFixed(0)).join(" ")}]`,
    `startup exec to /ready = ${ready.toFixed(0)} ms  [rounds: ${
      r.readyMs.map((v) => v.toFixed(0)).join(" ")
    }]`,
  ];
}

if (import.meta.main) {
  const root = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
  const r = await runStartupBench({ root, rounds: Number(Deno.args[0] ?? 5) });
  for (const l of formatStartup(r)) console.log(l);
}
