/** The memory part of bench/run.ts: nuncio idle RSS and RSS per idle keep-alive connection. */

import { measureIdleConnections } from "./lib/memory.ts";
import { findFreePorts } from "./lib/net.ts";
import { settledRssKiB } from "./lib/proc.ts";
import type { MemoryResult } from "./report.ts";
import { type Env, type NuncioLaunch, startHaproxy, startNginxProxy, startNuncio } from "./targets.ts";

/** Options for measureMemory. */
export interface MemoryOptions {
  /** How to start nuncio; undefined skips nuncio. */
  launch?: NuncioLaunch;
  /** Port of the running origin. */
  origin: number;
  /** Idle connections to hold. */
  count: number;
  /** Also measure nginx and HAProxy (HTTP mode) per idle connection. */
  compare: boolean;
}

/**
 * Starts a fresh nuncio per mode ("request": one GET then idle keep-alive; "connect": connect only),
 * records its settled RSS after start-up and the RSS growth per held connection; optionally the same
 * (request mode) for nginx and HAProxy. Failures are recorded in `error`, never thrown.
 */
export async function measureMemory(env: Env, opts: MemoryOptions): Promise<MemoryResult> {
  const result: MemoryResult = { nuncio: [], compare: {} };
  const log = `${env.dir}/idle-conns.log`;
  try {
    const launch = opts.launch;
    for (const mode of launch ? ["request", "connect"] as const : []) {
      const [admin, http, tcp] = findFreePorts(3);
      console.error(`memory: nuncio, ${opts.count} idle connections (${mode})`);
      const n = await startNuncio(
        env,
        launch!,
        { admin, http, tcp, origin: opts.origin },
        `nuncio-mem-${mode}`,
      );
      if (mode === "request") {
        await new Promise((resolve) => setTimeout(resolve, 1000));
        result.idleRssKiB = await settledRssKiB(n.proc.pid, 10_000);
      }
      result.nuncio.push(
        await measureIdleConnections(env.sup, {
          pid: n.proc.pid,
          port: http,
          count: opts.count,
          mode,
          logPath: log,
        }),
      );
      await n.proc.stop();
    }
    if (!opts.compare) return result;
    const [nginx, haproxy] = findFreePorts(2);
    console.error(`memory: nginx, ${opts.count} idle connections`);
    const ng = await startNginxProxy(env, nginx, opts.origin, "nginx-mem");
    result.compare.nginx = await measureIdleConnections(env.sup, {
      pid: ng.proc.pid,
      port: nginx,
      count: opts.count,
      logPath: log,
    });
    await ng.proc.stop();
    console.error(`memory: HAProxy HTTP, ${opts.count} idle connections`);
    const hp = await startHaproxy(env, "http", { port: haproxy, origin: opts.origin }, "haproxy-mem");
    result.compare["haproxy-http"] = await measureIdleConnections(env.sup, {
      pid: hp.proc.pid,
      port: haproxy,
      count: opts.count,
      logPath: log,
    });
    await hp.proc.stop();
  } catch (e) {
    result.error = (e as Error).message.split("\n").slice(0, 8).join(" | ");
  }
  return result;
}
