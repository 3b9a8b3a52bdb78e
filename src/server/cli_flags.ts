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
                           accepted for hot restart (not built yet); unused
  --version                print the version
  -h, --help               this help

Signals: SIGTERM/SIGINT drain and exit; SIGUSR1 reopens access log files and --log-path; SIGHUP is ignored.
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
}

/** What the command line asks for: run with flags, print something and exit, or fail with a usage error. */
export type CliParse =
  | { kind: "run"; flags: CliFlags }
  | { kind: "help" }
  | { kind: "version" }
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
  };
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
        default:
          throw new Error(`Unknown argument "${a}"`);
      }
    }
  } catch (e) {
    return { kind: "usage", message: (e as Error).message };
  }
  if (f.configPath === undefined && f.configYaml === undefined) {
    return { kind: "usage", message: "A config is required (-c FILE or --config-yaml YAML)" };
  }
  return { kind: "run", flags: f };
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
    args: ["nuncio", ...args],
  };
}
