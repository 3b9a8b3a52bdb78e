/**
 * `nuncio -c FILE`: applies the log flags, loads the bootstrap (with --config-yaml and --service-*), starts the
 * server and admin, handles signals (SIGTERM/SIGINT drain and exit, SIGUSR1 reopens logs, SIGHUP reloads the
 * config as POST /reload does) and drains on the way out. main.ts calls it after parsing flags.
 */
import { releaseStartupPages } from "../common/code_pages.ts";
import { compactHeap, IdleMemoryReducer } from "../common/heap.ts";
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
import { type AdminHandle, startAdmin } from "./admin_wiring.ts";
import {
  dynamicBaseId,
  enableRequestMigration,
  HOT_RESTART_VERSION,
  HotRestartServer,
  listenDomainSocket,
  type ParentHooks,
  ParentLink,
  ParentStatsMerger,
  socketPathOf,
} from "./hot_restart.ts";
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
  // SIGHUP re-reads the config once the server runs; before that it is eaten (Deno's default would end the
  // process)
  const hup: { reload?: () => void } = {};
  const onHup = () => hup.reload ? hup.reload() : log.info("caught SIGHUP while starting: ignored");
  Deno.addSignalListener("SIGHUP", onHup);
  try {
    return await serve(f, args, log, hup);
  } finally {
    Deno.removeSignalListener("SIGHUP", onHup);
  }
}

/** Hot restart state of this process (when --restart-epoch, --base-id or --use-dynamic-base-id arms it). */
interface HotRestartSetup {
  epoch: number;
  baseId: number;
  /** This epoch's domain socket, served to the next epoch once this one is up. */
  domain: Deno.UnixListener;
  path: string;
  /** The previous epoch, when one answered. */
  parent?: ParentLink;
}

async function armHotRestart(f: CliFlags, log: Logger): Promise<HotRestartSetup | undefined> {
  if (f.restartEpoch === undefined) return undefined;
  const epoch = f.restartEpoch;
  const baseId = f.useDynamicBaseId ? await dynamicBaseId(f.socketPath) : f.baseId;
  if (f.baseIdPath !== undefined) Deno.writeTextFileSync(f.baseIdPath, `${baseId}\n`);
  const path = socketPathOf(f.socketPath, baseId, epoch);
  const domain = await listenDomainSocket(path, f.socketMode, baseId);
  let parent: ParentLink | undefined;
  try {
    parent = epoch > 0 ? await ParentLink.connect(f.socketPath, baseId, epoch) : undefined;
  } catch (e) {
    domain.close();
    Deno.removeSync(path);
    throw e;
  }
  const migration = enableRequestMigration();
  if (migration === "set") log.info("hot restart: set net.ipv4.tcp_migrate_req=1");
  else if (migration !== "on") log.warn(`hot restart: ${migration}`);
  return { epoch, baseId, domain, path, parent };
}

async function serve(
  f: CliFlags,
  args: readonly string[],
  log: Logger,
  hup: { reload?: () => void },
): Promise<number> {
  const source = configSourceOf(f);
  const loaded = await loadConfigSource(source, { crossCheck: preServeChecks });
  if (!loaded.ok) {
    // a bad config never reaches the running epoch: it keeps serving
    for (const e of loaded.errors) console.error(formatConfigError(e));
    return 1;
  }
  if (f.mode === "validate") {
    console.log(`configuration '${f.configPath ?? OVERLAY_NAME}' OK`);
    return 0;
  }
  let hr: HotRestartSetup | undefined;
  try {
    hr = f.mode === "serve" ? await armHotRestart(f, log) : undefined;
  } catch (e) {
    console.error((e as Error).message);
    return 1;
  }
  const server = new Server(loaded.bootstrap, {
    configPath: f.configPath ?? "",
    concurrency: f.concurrency,
    logLevel: f.logLevel,
    raw: loaded.raw,
    commandLine: ["nuncio", ...args],
    drainTimeMs: f.drainTimeS * 1000,
    commandLineOptions: commandLineOptions(f, args),
    reusePort: hr !== undefined,
    drainStrategy: f.drainStrategy,
  });
  // SIGHUP and POST /reload: the same source read again, validated whole, applied through the xDS path
  let reloading: Promise<unknown> = Promise.resolve();
  server.reloadConfig = () => {
    const next = reloading.then(async () => {
      const again = await loadConfigSource(source, { crossCheck: preServeChecks });
      if (!again.ok) {
        throw new Error(
          `config rejected, the running config stays:\n${again.errors.map(formatConfigError).join("\n")}`,
        );
      }
      return await server.reload(again.raw);
    });
    reloading = next.catch(() => {});
    return next;
  };
  hup.reload = () => {
    log.info("caught SIGHUP: reloading the config");
    server.reloadConfig!().then((m) => log.info(m), (e) => log.error((e as Error).message));
  };
  if (hr) {
    const hello = hr.parent?.hello;
    server.hotRestart = {
      version: HOT_RESTART_VERSION,
      epoch: hr.epoch,
      generation: hello ? hello.generation + 1 : 0,
      firstStartedAt: hello?.startedAt ?? server.startedAt,
    };
  }
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
    return await run(server, f, log, loaded.bootstrap, hr);
  } finally {
    Deno.removeSignalListener("SIGUSR1", onUsr1);
    Deno.removeSignalListener("SIGINT", onQuit);
    Deno.removeSignalListener("SIGTERM", onQuit);
    hr?.parent?.close();
    try {
      hr?.domain.close();
      if (hr) Deno.removeSync(hr.path);
    } catch {
      // the hand-over closed and removed it already
    }
  }
}

async function run(
  server: Server,
  f: CliFlags,
  log: Logger,
  bootstrap: Bootstrap,
  hr: HotRestartSetup | undefined,
): Promise<number> {
  let admin: AdminHandle | null = null;
  try {
    // beside the previous epoch's sockets (SO_REUSEPORT); it keeps accepting until this one is ready
    await server.start();
    // the admin address is the one thing that cannot be shared: the previous epoch lets go of it first
    await hr?.parent?.shutdownAdmin();
    admin = await startAdmin(server, bootstrap);
  } catch (err) {
    console.error(`Failed to start: ${(err as Error).message}`);
    // a previous epoch that closed its admin listener serves it again once this process is gone
    hr?.parent?.close();
    await admin?.close();
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
  // and what a burst of traffic leaves, once it is over (V8's memory reducer, which Deno does not run); its
  // timer is unref'd, so an exception on the way out cannot keep the process alive
  const reducer = new IdleMemoryReducer();
  // the executable's start-up code (module loading, transpiling, config parsing) is not run again: a second
  // after serving, its pages go back to the page cache (common/code_pages.ts)
  const pageRelease = setTimeout(() => {
    const bytes = releaseStartupPages();
    if (bytes >= 0) log.debug(`start-up code pages released (${(bytes / 1048576).toFixed(0)} MiB advised)`);
  }, 1000);
  Deno.unrefTimer(pageRelease);
  let handedOver: Promise<void> | undefined;
  let handOver!: () => void;
  const handOverRequested = new Promise<"hand-over">((r) => handOver = () => r("hand-over"));
  let stopped!: () => void;
  const stoppedP = new Promise<void>((r) => stopped = r);
  if (hr) {
    // as Envoy: the previous epoch drains once this one did its initial discovery
    await server.initialized;
    const parent = hr.parent;
    if (parent) {
      await parent.drain().catch((e) => log.warn(`hot restart: ${(e as Error).message}`));
      log.info(`hot restart: epoch ${hr.epoch - 1} is draining`);
      const merger = new ParentStatsMerger(server.mainStats);
      parent.follow((s) => merger.merge(s), 1000).then((complete) => {
        merger.parentGone();
        log.info(`hot restart: epoch ${hr.epoch - 1} ${complete ? "exited" : "went away"}`);
      });
    }
    const hrServer = new HotRestartServer(
      hr.domain,
      hr.path,
      {
        epoch: hr.epoch,
        generation: server.hotRestart.generation,
        startedAt: server.hotRestart.firstStartedAt,
        closeAdmin: async () => {
          await admin?.close();
          admin = null;
        },
        reopenAdmin: async () => {
          admin = await startAdmin(server, bootstrap).catch((e) => {
            log.error(`admin cannot be served again: ${(e as Error).message}`);
            return null;
          });
        },
        stats: () => server.stats(),
        drain: async () => {
          handOver();
          await stoppedP;
          return server.finalStats ?? await server.stats();
        },
      } satisfies ParentHooks,
    );
    handedOver = hrServer.handedOver;
  }
  // a signal, /quitquitquit or the next epoch's drain request
  const why = await Promise.race([server.quitRequested.then(() => "quit" as const), handOverRequested]);
  if (why === "quit") {
    log.info("shutting down");
    // admin stays up while connections drain: /ready answers 503 DRAINING
    await server.stop(f.drainTimeS * 1000);
    stopped();
  } else {
    // the next epoch serves: stop accepting, tell connections to drain (spread over --drain-time-s when
    // gradual), and close what is left at --parent-shutdown-time-s
    const spread = f.drainStrategy === "gradual" ? f.drainTimeS * 1000 : 0;
    await server.stop(Math.max(f.parentShutdownTimeS, f.drainTimeS) * 1000, {
      spreadMs: spread,
      keepIdle: true,
    });
    stopped();
    // the last stats go to the next epoch before this one exits
    await handedOver;
  }
  reducer.close();
  clearTimeout(pageRelease);
  await admin?.close();
  return 0;
}
