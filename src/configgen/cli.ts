/**
 * `nuncio configgen`: the control plane's builder offline (Lyft's "templates on the host" stage). Manifests,
 * defaults and the edge file in; one static bootstrap per service and one for the edge out, plus the network
 * team's own templates; every output validated before any is written.
 */
import "../config/zod_setup.ts";
import "../registry/builtin.ts";
import { parseRoleFlags } from "../common/cli_args.ts";
import { parseRegistryAddress } from "./bootstrap.ts";
import { type ConfiggenOptions, planOutputs, validateOutputs, writeOutputs } from "./generate.ts";

/** `nuncio configgen --help`. */
export const HELP = `nuncio configgen: static Envoy v3 bootstraps from the control plane's manifests

Usage:
  nuncio configgen --manifests DIR --defaults FILE [--edge FILE] --out DIR [--registry HOST:PORT]
                   [--templates DIR] [--admin-port 9901] [-l LEVEL]

Writes OUT/<node>.yaml for each service with a manifest and for the edge: node {id, cluster} = <node>,
admin on 127.0.0.1:<admin-port>, the listeners (routes inline), clusters and secrets the control plane would
serve that node, with endpoints polled over REST EDS from the registry (\`nuncio discovery\`) through the static
cluster "registry". Every proxy of a node runs the same file and sets its own id:
  nuncio -c OUT/users.yaml --service-node users-1

Options:
  --manifests DIR          service manifests (*.yaml, *.yml, *.json)
  --defaults FILE          the network team's defaults (ports, knob bounds, secrets)
  --edge FILE              the edge routes (default: no edge bootstrap)
  --out DIR                where the files go (created); bootstraps an earlier run wrote there and this one
                           no longer makes are removed (only files starting with its header)
  --registry HOST:PORT     the registry's HTTP port (default 127.0.0.1:8080); a host name makes the registry
                           cluster STRICT_DNS
  --templates DIR          the network team's templates, Jinja syntax (nunjucks): each *.j2, *.njk, *.jinja
                           renders once per node to OUT/<node>/<name without extension>; files named _* are
                           only included; context: node, service (its manifest, null for the edge), manifests
                           (by name), defaults, edge, resources (the node's listeners, routes, clusters,
                           endpoints, secrets as served over xDS), registry {host, port, address, cluster};
                           durations are milliseconds; extra filters: to_yaml, to_json(indent), duration
                           (ms -> "1.5s"); an output that is only whitespace is not written; .yaml, .yml and
                           .json outputs must be valid bootstraps
  --admin-port N           the admin port of every bootstrap (default 9901)
  -l, --log-level LEVEL    trace, debug, info, warn, error, critical, off (default error: the checks'
                           warnings repeat what the errors say)
  -h, --help               this help

Every output is checked as \`nuncio --mode validate\` would before anything is written: an input error, a
template error or an invalid output prints file:line:col errors, writes nothing and exits 1. Same inputs,
same bytes (no time stamps); a file whose bytes are already right is left alone.
`;

/** Parses the flags; a number is an exit code (help or usage error). */
export function parseConfiggenFlags(args: readonly string[]): ConfiggenOptions | number {
  const o: Partial<ConfiggenOptions> & { adminPort: number; registryText: string } = {
    adminPort: 9901,
    registryText: "127.0.0.1:8080",
  };
  const code = parseRoleFlags(args, HELP, (name, value) => {
    switch (name) {
      case "--manifests":
        o.manifests = dirName(value());
        return true;
      case "--defaults":
        o.defaults = value();
        return true;
      case "--edge":
        o.edge = value();
        return true;
      case "--out":
        o.out = dirName(value());
        return true;
      case "--registry":
        o.registryText = value();
        return true;
      case "--templates":
        o.templates = dirName(value());
        return true;
      case "--admin-port": {
        const v = value();
        const n = Number(v);
        if (!/^\d+$/.test(v) || n < 1 || n > 65535) {
          throw new Error(`--admin-port must be a port, not "${v}"`);
        }
        o.adminPort = n;
        return true;
      }
    }
    return false;
  }, () => {
    for (const f of ["manifests", "defaults", "out"] as const) {
      if (o[f] === undefined) return `--${f} is required`;
    }
    try {
      o.registry = parseRegistryAddress(o.registryText);
    } catch (e) {
      return (e as Error).message;
    }
  }, "error");
  if (code !== undefined) return code;
  return o as ConfiggenOptions;
}

/** A directory flag without trailing slashes ("out/" -> "out"), so output paths read cleanly. */
function dirName(v: string): string {
  const t = v.replace(/\/+$/, "");
  return t === "" && v !== "" ? "/" : t;
}

/** Runs `nuncio configgen ARGS`; resolves to the exit code. */
export async function runConfiggenCommand(args: string[]): Promise<number> {
  const o = parseConfiggenFlags(args);
  if (typeof o === "number") return o;
  const plan = await planOutputs(o);
  if (!plan.ok) {
    for (const e of plan.errors) console.error(e);
    console.error("configgen: nothing written");
    return 1;
  }
  const invalid = await validateOutputs(plan.outputs);
  if (invalid.length > 0) {
    for (const e of invalid) console.error(e);
    console.error("configgen: nothing written");
    return 1;
  }
  try {
    for (const line of await writeOutputs(o.out, plan.outputs)) console.log(line);
  } catch (e) {
    console.error(`configgen: writing ${o.out} failed: ${(e as Error).message}`);
    return 1;
  }
  return 0;
}
