/** `nuncio control-plane`: flags of the standalone management server; runs until SIGINT/SIGTERM. */
import { durationFlag, parseRoleFlags, portFlag } from "../common/cli_args.ts";
import { runUntilSignal } from "../common/role.ts";
import { formatConfigError } from "../config/errors.ts";
import { loadInputs } from "./inputs.ts";
import { type ControlPlaneServiceOptions, startControlPlane } from "./run.ts";

const HELP = `nuncio control-plane: per-node Envoy config (xDS) from service manifests

Usage:
  nuncio control-plane --manifests DIR --defaults FILE [--edge FILE] [--registry URL] [--port N] [--grpc-port N]
  nuncio control-plane --manifests DIR --defaults FILE [--edge FILE] --validate

Options:
  --manifests DIR          one YAML (or JSON) manifest per service
  --defaults FILE          the network team's defaults: ports, knob defaults and bounds, secrets, HDS
  --edge FILE              the edge routes (node.cluster of edge proxies: the file's node_cluster)
  --validate               check every input, print errors as file:line:col: path: message, exit 0 or 1
  --registry URL           a registry (nuncio discovery) to read hosts from, polled; default: a registry runs
                           in this process (memory store; its v1 API on the HTTP port)
  --registry-refresh D     how often a remote registry is read (default 5s)
  --ttl D                  TTL of the in-process registry's hosts (default 600s)
  --port N                 HTTP: /mesh (?format=json), POST /v3/discovery:*, /hds, /load, /inputs,
                           /healthcheck, /stats (default 18080)
  --grpc-port N            gRPC (h2c): ADS, LDS/RDS/CDS/EDS/SDS (SotW and delta), HDS, LRS (default 18000)
  --host ADDR              address to bind (default 0.0.0.0)
  --watch-interval D       how often input files are checked for changes (default 1s; 0: never)
  --load-report-interval D LRS interval asked of proxies (default 10s)
  -l, --log-level LEVEL    trace, debug, info, warn, error, critical, off (default info)
  -h, --help               this help

Durations: 500ms, 30s, 10m, 1h, or a number of seconds.
`;

/** Parsed flags: the service options, or `validate` only. */
export type ControlPlaneFlags = ControlPlaneServiceOptions & { validate: boolean };

/** Parses the subcommand's flags; a number is an exit code (help or usage error). */
export function parseControlPlaneFlags(args: string[]): ControlPlaneFlags | number {
  let manifests: string | undefined;
  let defaults: string | undefined;
  let edge: string | undefined;
  const o: Omit<ControlPlaneFlags, "paths"> = {
    port: 18080,
    grpcPort: 18000,
    hostname: "0.0.0.0",
    validate: false,
  };
  const code = parseRoleFlags(args, HELP, (name, value) => {
    switch (name) {
      case "--manifests":
        manifests = value();
        return true;
      case "--defaults":
        defaults = value();
        return true;
      case "--edge":
        edge = value();
        return true;
      case "--validate":
        o.validate = true;
        return true;
      case "--registry":
        o.registryUrl = value();
        if (!/^https?:\/\/[^/]+/.test(o.registryUrl)) throw new Error(`${name} must be an http:// URL`);
        return true;
      case "--registry-refresh":
        o.registryRefreshMs = durationFlag(value(), name);
        return true;
      case "--ttl":
        o.registryTtlMs = durationFlag(value(), name);
        return true;
      case "--port":
        o.port = portFlag(value(), name);
        return true;
      case "--grpc-port":
        o.grpcPort = portFlag(value(), name);
        return true;
      case "--host":
        o.hostname = value();
        return true;
      case "--watch-interval":
        o.watchIntervalMs = durationFlag(value(), name, true);
        return true;
      case "--load-report-interval":
        o.loadReportIntervalMs = durationFlag(value(), name);
        return true;
    }
    return false;
  }, () => {
    if (manifests === undefined) return "--manifests DIR is required";
    if (defaults === undefined) return "--defaults FILE is required";
  });
  if (code !== undefined) return code;
  return {
    ...o,
    paths: { manifests: manifests!, defaults: defaults!, ...(edge !== undefined ? { edge } : {}) },
  };
}

/** Runs `nuncio control-plane ARGS`; returns the exit code. */
export async function runControlPlaneCommand(args: string[]): Promise<number> {
  const flags = parseControlPlaneFlags(args);
  if (typeof flags === "number") return flags;
  if (flags.validate) {
    const set = await loadInputs(flags.paths);
    for (const e of set.errors) console.error(formatConfigError(e));
    if (set.errors.length === 0) {
      console.log(`${set.manifests.size} manifests${set.edge ? " and the edge" : ""}: OK`);
    }
    return set.errors.length === 0 ? 0 : 1;
  }
  return await runUntilSignal("the control plane", "control-plane", () => startControlPlane(flags));
}
