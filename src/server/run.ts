/**
 * `nuncio -c FILE`: applies the log flags, loads the bootstrap (with --config-yaml and --service-*), starts the
 * server and admin, handles signals (SIGTERM/SIGINT drain and exit, SIGUSR1 reopens logs, SIGHUP is logged and
 * ignored) and drains on the way out. main.ts calls it after parsing flags.
 */
import { compactHeap } from "../common/heap.ts";
import {
  Logger,
  parseComponentLogLevels,
  setComponentLogLevel,
  setLogFormat,
  setLogLevel,
  setLogPath,
} from "../common/log.ts";
import type { Bootstrap } from "../config/bootstrap.ts";
import { formatConfigError } from "../config/errors.ts";
import { type ConfigSource, loadConfigSource, OVERLAY_NAME } from "../config/overlay.ts";
import { startAdmin } from "./admin_wiring.ts";
import { type CliFlags, commandLineOptions } from "./cli_flags.ts";
import { preServeChecks } from "./pre_serve_checks.ts";
import { Server, VERSION } from "./server.ts";

/** Applies --log-level, --component-log-level, --log-format(-escaped) and --log-path; throws on a bad one. */
export function applyLogFlags(f: CliFlags): void {
  setLogLevel(f.logLevel);
  if (f.componentLogLevel !== undefined) {
    for (const [name, level] of parseComponentLogLevels(f.componentLogLevel)) {
      setComponentLogLevel(name, level);
    }
  }
  setLogFormat(f.logFormat, f.logFormatEscaped);
  if (f.logPath !== undefined) {
    try {
      setLogPath(f.logPath);
    } catch (e) {
      throw new Error(`Cannot open log file "${f.logPath}": ${(e as Error).message}`);
    }
  }
}

/** The ConfigSource the flags describe (file, --config-yaml, --service-node/cluster/zone). */
export function configSourceOf(f: CliFlags): ConfigSource {
  return {
    path: f.configPath,
    overlayYaml: f.configYaml,
    node: { id: f.serviceNode, cluster: f.serviceCluster, zone: f.serviceZone },
  };
}

/** Runs the proxy until asked to quit; resolves to the exit code. */
export async function runProxy(f: CliFlags, args: readonly string[]): Promise<number> {
  try {
    applyLogFlags(f);
  } catch (e) {
    console.error((e as Error).message);
    return 1;
  }
  const log = new Logger("main");
  // Envoy eats SIGHUP (Deno's default would end the process); reload is not built yet.
  const onHup = () => log.info("caught SIGHUP: ignored (config reload is not supported yet)");
  Deno.addSignalListener("SIGHUP", onHup);
  try {
    return await serve(f, args, log);
  } finally {
    Deno.removeSignalListener("SIGHUP", onHup);
  }
}

async function serve(f: CliFlags, args: readonly string[], log: Logger): Promise<number> {
  const source = configSourceOf(f);
  const loaded = await loadConfigSource(source, { crossCheck: preServeChecks });
  if (!loaded.ok) {
    for (const e of loaded.errors) console.error(formatConfigError(e));
    return 1;
  }
  if (f.mode === "validate") {
    console.log(`configuration '${f.configPath ?? OVERLAY_NAME}' OK`);
    return 0;
  }
  const server = new Server(loaded.bootstrap, {
    configPath: f.configPath ?? "",
    concurrency: f.concurrency,
    logLevel: f.logLevel,
    raw: loaded.raw,
    commandLine: ["nuncio", ...args],
    drainTimeMs: f.drainTimeS * 1000,
    commandLineOptions: commandLineOptions(f, args),
  });
  // signals that arrive while workers still start are handled too (Deno's defaults would end the process):
  // SIGUSR1 reopens logs, SIGTERM/SIGINT stop cleanly once start-up is done
  const onUsr1 = () => {
    server.reopenLogs();
    log.info("caught SIGUSR1: reopened log files");
  };
  const onQuit = () => server.quit();
  Deno.addSignalListener("SIGUSR1", onUsr1);
  Deno.addSignalListener("SIGINT", onQuit);
  Deno.addSignalListener("SIGTERM", onQuit);
  try {
    return await run(server, f, log, loaded.bootstrap);
  } finally {
    Deno.removeSignalListener("SIGUSR1", onUsr1);
    Deno.removeSignalListener("SIGINT", onQuit);
    Deno.removeSignalListener("SIGTERM", onQuit);
  }
}

async function run(server: Server, f: CliFlags, log: Logger, bootstrap: Bootstrap): Promise<number> {
  let admin;
  try {
    await server.start();
    admin = await startAdmin(server, bootstrap);
  } catch (err) {
    console.error(`Failed to start: ${(err as Error).message}`);
    await server.stop(0);
    return 1;
  }
  for (const l of server.listeners()) log.info(`listener ${l.name} on ${l.address}:${l.port}`);
  if (admin) log.info(`admin on ${admin.address}`);
  if (f.mode === "init_only") {
    log.info(`nuncio ${VERSION} initialized (--mode init_only): exiting`);
    await admin?.close();
    await server.stop(0);
    return 0;
  }
  log.info(`nuncio ${VERSION} started with ${f.concurrency} worker(s)`);
  // start-up garbage (YAML document, zod parse, module evaluation) goes back to the OS now, not never
  compactHeap();
  await server.quitRequested;
  log.info("shutting down");
  // admin stays up while connections drain: /ready answers 503 DRAINING
  await server.stop(f.drainTimeS * 1000);
  await admin?.close();
  return 0;
}
