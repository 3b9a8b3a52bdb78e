/**
 * Shared helpers for nuncio benchmarks: supervised child processes, ports, wrk, RSS, tool install.
 * Later benches (h2load, gRPC, rate limit) import from here.
 */

export {
  groupAlive,
  type Managed,
  processTree,
  readRssKiB,
  settledRssKiB,
  type SpawnOptions,
  Supervisor,
  tailFile,
  treeRssKiB,
} from "./lib/proc.ts";
export {
  findFreePort,
  findFreePorts,
  probeHttp,
  type ProbeResult,
  waitForPort,
  type WaitOptions,
} from "./lib/net.ts";
export {
  formatUs,
  median,
  parseWrk,
  parseWrkTime,
  runWrk,
  type WrkOptions,
  type WrkResult,
} from "./lib/wrk.ts";
export { ensureTools, findExecutable, type ToolSpec } from "./lib/tools.ts";
export { type H2loadOptions, type H2loadResult, parseH2load, runH2load } from "./lib/h2load.ts";
export { type IdleOptions, type IdleResult, measureIdleConnections } from "./lib/memory.ts";
