/** The proxy's command line (`nuncio -c FILE ...`), parsed with Envoy's flag names and semantics. */
import { cliArgs } from "../common/cli_args.ts";
import { LOG_LEVELS, parseComponentLogLevels } from "../common/log.ts";
import { DEFAULT_LOG_FORMAT } from "../common/log_format.ts";

/** nuncio's `--help`. */
export const HELP = `nuncio: an Envoy-style service proxy

Usage:
  nuncio -c FILE [--config-yaml YAML] [--concurrency N] [--mode serve|validate|init_only] [-l LEVEL]
  nuncio ratelimit -c LIMITS [--redis redis://host:port] [--port 8081] [--http-port 8080]
                                  the global rate-limit service (\`nuncio ratelimit --help\`)
  nuncio discovery [--port 8080] [--ttl 600s] [--redis redis://host:port]
                                  the host registry (Lyft's discovery API and v3 EDS; \`nuncio discovery --help\`)
  nuncio register --service NAME --port P [--registry URL] [--every 60s] [--tag k=v ...]
                                  the check-in agent (\`nuncio register --help\`)
  nuncio control-plane --manifests DIR --defaults FILE [--edge FILE] [--registry URL] [--port 18000]
                                  the management server (\`nuncio control-plane --help\`)
  nuncio hot-restarter START_SCRIPT
                                  runs nuncio under hot restarts: SIGHUP starts the next epoch
                                  (\`nuncio hot-restarter --help\`)
  nuncio configgen --manifests DIR --defaults FILE [--edge FILE] --out DIR [--templates DIR]
                                  static bootstraps from the manifests (\`nuncio configgen --help\`)

Options:
  -c, --config-path, --config FILE
                           Envoy v3 bootstrap (YAML or JSON)
  --config-yaml YAML       bootstrap YAML merged over the file (scalars replace, messages merge, lists
                           append); alone, the whole bootstrap
  --concurrency N          data-plane workers sharing every port (default: number of cores)
  --mode MODE              serve (default); validate: check the config, print errors with file:line:col,
                           exit 0 or 1; init_only: start everything (binds every port), then stop and exit 0
  -l, --log-level LEVEL    trace, debug, info, warn, error, critical, off (default info): every component
  --component-log-level C:L,...
                           per component, e.g. upstream:debug,connection:trace (see /logging for names)
  --log-path FILE          write logs to FILE instead of stderr (reopened on SIGUSR1)
  --log-format FORMAT      Envoy's flags: %Y-%m-%d %T.%e %t %l %L %n %v %_ %j %P %z ... (default
                           "${DEFAULT_LOG_FORMAT}"); "json" for one JSON object per line
  --log-format-escaped     escape control characters (newlines) in messages
  --service-cluster NAME   overrides node.cluster
  --service-node ID        overrides node.id
  --service-zone ZONE      overrides node.locality.zone
  --drain-time-s N         seconds connections get to finish on shutdown (default 5)
  --parent-shutdown-time-s N
                           hot restart: seconds after the hand-over before the old process is told to
                           exit (default 900)
  --drain-strategy S       gradual (default: connections are told to drain at times spread over
                           --drain-time-s) or immediate (all at once)
  --restart-epoch N        hot restart: this process's epoch; N > 0 takes over from epoch N-1 of the
                           same --base-id (arms hot restart; without it nuncio runs alone)
  --base-id N              hot restart: which family of processes this one belongs to (default 0)
  --use-dynamic-base-id    pick a --base-id no running nuncio uses (written to --base-id-path)
  --base-id-path FILE      where --use-dynamic-base-id writes the base id it picked
  --socket-path PATH       hot restart: domain socket path prefix (default /tmp/nuncio_domain_socket)
  --socket-mode MODE       hot restart: octal file mode of the domain socket (default 600)
  --disable-hot-restart    never take part in a hot restart
  --hot-restart-version    print the hot restart compatibility version and exit
  --version                print the version
  -h, --help               this help

Signals: SIGTERM/SIGINT drain and exit; SIGUSR1 reopens access log files and --log-path; SIGHUP re-reads the
bootstrap and applies what changed (a bad one is rejected and the running config stays).
`;

/** Parsed proxy flags. */
export interface CliFlags {
  configPath?: string;
  configYaml?: string;
  concurrency: number;
  mode: "serve" | "validate" | "init_only";
  logLevel: string;
  componentLogLevel?: string;
  logPath?: string;
  logFormat: string;
  logFormatEscaped: boolean;
  serviceCluster?: string;
  serviceNode?: string;
  serviceZone?: string;
  drainTimeS: number;
  parentShutdownTimeS: number;
  drainStrategy: "gradual" | "immediate";
  /** Set when --restart-epoch, --base-id or --use-dynamic-base-id arms hot restart. */
  restartEpoch?: number;
  baseId: number;
  useDynamicBaseId: boolean;
  baseIdPath?: string;
  socketPath: string;
  socketMode: number;
  disableHotRestart: boolean;
}

/** What the command line asks for: run with flags, print something and exit, or fail with a usage error. */
export type CliParse =
  | { kind: "run"; flags: CliFlags }
  | { kind: "help" }
  | { kind: "version" }
  | { kind: "hot-restart-version" }
  | { kind: "usage"; message: string };

const MODES = ["serve", "validate", "init_only"] as const;

/** Parses `args` (flags after `nuncio`); `cores` is the default --concurrency. */
export function parseCliFlags(args: readonly string[], cores = 1): CliParse {
  const f: CliFlags = {
    concurrency: Math.max(1, cores),
    mode: "serve",
    logLevel: "info",
    logFormat: DEFAULT_LOG_FORMAT,
    logFormatEscaped: false,
    drainTimeS: 5,
    parentShutdownTimeS: 900,
    drainStrategy: "gradual",
    baseId: 0,
    useDynamicBaseId: false,
    socketPath: DEFAULT_SOCKET_PATH,
    socketMode: 0o600,
    disableHotRestart: false,
  };
  let armed = false;
  try {
    for (const { arg: a, name, value } of cliArgs(args)) {
      const seconds = (): number => {
        const n = Number(value());
        if (!(n >= 0) || !Number.isFinite(n)) throw new Error(`${name} must be a number of seconds`);
        return n;
      };
      switch (name) {
        case "-h":
        case "--help":
          return { kind: "help" };
        case "--version":
          return { kind: "version" };
        case "-c":
        case "--config":
        case "--config-path":
          f.configPath = value();
          break;
        case "--config-yaml":
          f.configYaml = value();
          break;
        case "--concurrency": {
          const n = Number(value());
          if (!Number.isInteger(n) || n < 0 || n > 256) {
            throw new Error("--concurrency must be an integer from 1 to 256");
          }
          f.concurrency = Math.max(1, n); // Envoy: 0 still runs one worker
          break;
        }
        case "--mode": {
          const m = value();
          if (!(MODES as readonly string[]).includes(m)) {
            throw new Error(`--mode must be serve, validate or init_only, not "${m}"`);
          }
          f.mode = m as CliFlags["mode"];
          break;
        }
        case "-l":
        case "--log-level": {
          const l = value();
          if (!(LOG_LEVELS as readonly string[]).includes(l) && l !== "warning") {
            throw new Error(`Unknown log level "${l}" (one of ${LOG_LEVELS.join(", ")})`);
          }
          f.logLevel = l === "warning" ? "warn" : l;
          break;
        }
        case "--component-log-level":
          f.componentLogLevel = value();
          parseComponentLogLevels(f.componentLogLevel);
          break;
        case "--log-path":
          f.logPath = value();
          break;
        case "--log-format":
          f.logFormat = value();
          break;
        case "--log-format-escaped":
          f.logFormatEscaped = true;
          break;
        case "--service-cluster":
          f.serviceCluster = value();
          break;
        case "--service-node":
          f.serviceNode = value();
          break;
        case "--service-zone":
          f.serviceZone = value();
          break;
        case "--drain-time-s":
          f.drainTimeS = seconds();
          break;
        case "--parent-shutdown-time-s":
          f.parentShutdownTimeS = seconds();
          break;
        case "--drain-strategy": {
          const v = value();
          if (v !== "gradual" && v !== "immediate") {
            throw new Error(`--drain-strategy must be gradual or immediate, not "${v}"`);
          }
          f.drainStrategy = v;
          break;
        }
        case "--restart-epoch":
          f.restartEpoch = integer(name, value(), 0, 2 ** 31 - 1);
          armed = true;
          break;
        case "--base-id":
          f.baseId = integer(name, value(), 0, 2 ** 31 - 1);
          armed = true;
          break;
        case "--use-dynamic-base-id":
          f.useDynamicBaseId = true;
          armed = true;
          break;
        case "--base-id-path":
          f.baseIdPath = value();
          break;
        case "--socket-path":
          f.socketPath = value();
          break;
        case "--socket-mode": {
          const v = value();
          if (!/^[0-7]{1,4}$/.test(v)) {
            throw new Error(`--socket-mode must be an octal mode such as 600, not "${v}"`);
          }
          f.socketMode = parseInt(v, 8);
          break;
        }
        case "--disable-hot-restart":
          f.disableHotRestart = true;
          break;
        case "--hot-restart-version":
          return { kind: "hot-restart-version" };
        default:
          throw new Error(`Unknown argument "${a}"`);
      }
    }
  } catch (e) {
    return { kind: "usage", message: (e as Error).message };
  }
  if (f.disableHotRestart) {
    if (f.restartEpoch !== undefined && f.restartEpoch > 0) {
      return { kind: "usage", message: "--restart-epoch must be 0 with --disable-hot-restart" };
    }
    armed = false;
  }
  if (f.useDynamicBaseId && f.restartEpoch !== undefined && f.restartEpoch > 0) {
    return { kind: "usage", message: "--use-dynamic-base-id is for epoch 0; later epochs name --base-id" };
  }
  if (armed) f.restartEpoch ??= 0;
  else f.restartEpoch = undefined;
  if (f.configPath === undefined && f.configYaml === undefined) {
    return { kind: "usage", message: "A config is required (-c FILE or --config-yaml YAML)" };
  }
  return { kind: "run", flags: f };
}

/** Where hot-restart domain sockets live unless --socket-path says (Envoy's is the abstract @envoy_domain_socket). */
export const DEFAULT_SOCKET_PATH = "/tmp/nuncio_domain_socket";

function integer(name: string, v: string, min: number, max: number): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < min || n > max) {
    throw new Error(`${name} must be an integer from ${min} to ${max}`);
  }
  return n;
}

/** Envoy's CommandLineOptions names for /server_info. */
export function commandLineOptions(f: CliFlags, args: readonly string[]): Record<string, unknown> {
  return {
    config_path: f.configPath ?? "",
    config_yaml: f.configYaml ?? "",
    concurrency: f.concurrency,
    mode: f.mode === "serve" ? "Serve" : f.mode === "validate" ? "Validate" : "InitOnly",
    log_level: f.logLevel,
    component_log_level: f.componentLogLevel ?? "",
    log_path: f.logPath ?? "",
    log_format: f.logFormat,
    log_format_escaped: f.logFormatEscaped,
    service_cluster: f.serviceCluster ?? "",
    service_node: f.serviceNode ?? "",
    service_zone: f.serviceZone ?? "",
    drain_time: `${f.drainTimeS}s`,
    parent_shutdown_time: `${f.parentShutdownTimeS}s`,
    drain_strategy: f.drainStrategy === "gradual" ? "Gradual" : "Immediate",
    restart_epoch: f.restartEpoch ?? 0,
    base_id: f.baseId,
    use_dynamic_base_id: f.useDynamicBaseId,
    base_id_path: f.baseIdPath ?? "",
    socket_path: f.socketPath,
    socket_mode: f.socketMode,
    disable_hot_restart: f.disableHotRestart || f.restartEpoch === undefined,
    args: ["nuncio", ...args],
  };
}
