/** nuncio CLI entry: parses flags, picks the role, nothing else. */
import "./src/config/zod_setup.ts";
import "./src/registry/builtin.ts";
import { compactHeap } from "./src/common/heap.ts";
import { Logger, setLogLevel } from "./src/common/log.ts";
import { formatConfigError } from "./src/config/errors.ts";
import { loadConfigFile } from "./src/config/load.ts";
import { checkClusterReferences } from "./src/server/cross_check.ts";
import { startAdmin } from "./src/server/admin_wiring.ts";
import { Server, VERSION } from "./src/server/server.ts";

const HELP = `nuncio ${VERSION}: an Envoy-style service proxy

Usage:
  nuncio -c FILE [--concurrency N] [--mode serve|validate] [--log-level LEVEL]
  nuncio ratelimit -c LIMITS [--redis redis://host:port] [--port 8081] [--http-port 8080]
                                  the global rate-limit service (\`nuncio ratelimit --help\`)

Options:
  -c, --config-path FILE   Envoy v3 bootstrap (YAML or JSON)
  --concurrency N          data-plane workers sharing every port (default: number of cores)
  --mode serve|validate    validate: check the config, print errors with file:line:col, exit 0 or 1
  -l, --log-level LEVEL    trace, debug, info, warn, error, critical, off (default info)
  --drain-time-s N         seconds to let connections finish on shutdown (default 5)
  --version                print the version
  -h, --help               this help
`;

interface Flags {
  config?: string;
  concurrency: number;
  mode: "serve" | "validate";
  logLevel: string;
  drainTimeS: number;
}

function parseFlags(args: string[]): Flags | number {
  const f: Flags = {
    concurrency: navigator.hardwareConcurrency || 1,
    mode: "serve",
    logLevel: "info",
    drainTimeS: 5,
  };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const eq = a.indexOf("=");
    const name = a.startsWith("--") && eq > 0 ? a.slice(0, eq) : a;
    const value = () => (a.startsWith("--") && eq > 0 ? a.slice(eq + 1) : args[++i]);
    switch (name) {
      case "-h":
      case "--help":
        console.log(HELP);
        return 0;
      case "--version":
        console.log(`nuncio version ${VERSION} (deno ${Deno.version.deno})`);
        return 0;
      case "-c":
      case "--config-path":
        f.config = value();
        break;
      case "--concurrency": {
        const n = Number(value());
        if (!Number.isInteger(n) || n < 1 || n > 256) {
          return usage(`--concurrency must be an integer from 1 to 256`);
        }
        f.concurrency = n;
        break;
      }
      case "--mode": {
        const m = value();
        if (m !== "serve" && m !== "validate") return usage(`--mode must be serve or validate, not "${m}"`);
        f.mode = m;
        break;
      }
      case "-l":
      case "--log-level":
        f.logLevel = value();
        break;
      case "--drain-time-s": {
        const n = Number(value());
        if (!(n >= 0)) return usage("--drain-time-s must be a number of seconds");
        f.drainTimeS = n;
        break;
      }
      default:
        return usage(`Unknown argument "${a}"`);
    }
  }
  if (!f.config) return usage("A config file is required (-c FILE)");
  try {
    setLogLevel(f.logLevel);
  } catch (err) {
    return usage((err as Error).message);
  }
  return f;
}

function usage(msg: string): number {
  console.error(`${msg}\n\n${HELP}`);
  return 1;
}

async function main(args: string[]): Promise<number> {
  if (args[0] === "ratelimit") {
    // loaded only for this role (node:http2 and the service stay out of the proxy's memory)
    const { runRatelimitCommand } = await import("./src/ratelimit/cli.ts");
    return await runRatelimitCommand(args.slice(1));
  }
  const flags = parseFlags(args);
  if (typeof flags === "number") return flags;
  const loaded = await loadConfigFile(flags.config!, { crossCheck: checkClusterReferences });
  if (!loaded.ok) {
    for (const e of loaded.errors) console.error(formatConfigError(e));
    return 1;
  }
  if (flags.mode === "validate") {
    console.log(`configuration '${flags.config}' OK`);
    return 0;
  }
  const log = new Logger("main");
  const server = new Server(loaded.bootstrap, {
    configPath: flags.config!,
    concurrency: flags.concurrency,
    logLevel: flags.logLevel,
    raw: loaded.raw,
    commandLine: ["nuncio", ...args],
  });
  try {
    await server.start();
  } catch (err) {
    console.error(`Failed to start: ${(err as Error).message}`);
    await server.stop(0);
    return 1;
  }
  const admin = await startAdmin(server, loaded.bootstrap);
  for (const l of server.listeners()) log.info(`listener ${l.name} on ${l.address}:${l.port}`);
  if (admin) log.info(`admin on ${admin.address}`);
  log.info(`nuncio ${VERSION} started with ${flags.concurrency} worker(s)`);
  // start-up garbage (YAML document, zod parse, module evaluation) goes back to the OS now, not never
  compactHeap();
  const onSignal = () => server.quit();
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  await server.quitRequested;
  Deno.removeSignalListener("SIGINT", onSignal);
  Deno.removeSignalListener("SIGTERM", onSignal);
  log.info("shutting down");
  await admin?.close();
  await server.stop(flags.drainTimeS * 1000);
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
