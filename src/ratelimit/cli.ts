/** `nuncio ratelimit`: flags of the standalone rate-limit service; runs until SIGINT/SIGTERM. */
import { parseRoleFlags, portFlag } from "../common/cli_args.ts";
import { runUntilSignal } from "../common/role.ts";
import { type RatelimitServiceOptions, startRatelimitService } from "./run.ts";

const HELP = `nuncio ratelimit: a global rate-limit service speaking Envoy's RLS gRPC API

Usage:
  nuncio ratelimit -c LIMITS [--redis URL] [--port N] [--http-port N] [--redis-failure-mode open|closed]

Options:
  -c, --config(-path) PATH     limits file (envoyproxy/ratelimit YAML) or a directory of them; reloaded on change
  --redis URL                  redis://[user:pass@]host:port[/db]: counters shared by replicas (default: memory)
  --redis-failure-mode MODE    open (allow, default) or closed (deny) while Redis is unreachable
  --redis-timeout-ms N         Redis command timeout (default 1000)
  --redis-key-prefix P         prefix of every Redis key
  --port N                     gRPC (h2c) port for ShouldRateLimit (default 8081)
  --http-port N                /healthcheck, /rlconfig, /stats, POST /json (default 8080)
  --host ADDR                  address to bind (default 0.0.0.0)
  --watch-interval-ms N        limits poll interval, 0 disables reload (default 1000)
  --shadow-mode                answer OK even when over the limit (stats still count)
  -l, --log-level LEVEL        trace, debug, info, warn, error, critical, off (default info)
  -h, --help                   this help
`;

/** Parses the `ratelimit` subcommand's flags; a number is an exit code (help or usage error). */
export function parseRatelimitFlags(args: string[]): RatelimitServiceOptions | number {
  const o: Partial<RatelimitServiceOptions> = { grpcPort: 8081, httpPort: 8080, hostname: "0.0.0.0" };
  const code = parseRoleFlags(args, HELP, (name, value) => {
    switch (name) {
      case "-c":
      case "--config":
      case "--config-path":
        o.limitsPath = value();
        return true;
      case "--redis":
        o.redisUrl = value();
        return true;
      case "--redis-failure-mode": {
        const m = value();
        if (m !== "open" && m !== "closed") {
          throw new Error(`--redis-failure-mode must be open or closed, not "${m}"`);
        }
        o.failureMode = m;
        return true;
      }
      case "--redis-timeout-ms":
        o.redisTimeoutMs = positive(value(), name);
        return true;
      case "--redis-key-prefix":
        o.redisKeyPrefix = value();
        return true;
      case "--port":
        o.grpcPort = portFlag(value(), name);
        return true;
      case "--http-port":
        o.httpPort = portFlag(value(), name);
        return true;
      case "--host":
        o.hostname = value();
        return true;
      case "--watch-interval-ms":
        o.watchIntervalMs = positive(value(), name, true);
        return true;
      case "--shadow-mode":
        o.shadowMode = true;
        return true;
    }
    return false;
  }, () => {
    if (!o.limitsPath) return "A limits file or directory is required (-c PATH)";
    if (o.redisUrl) {
      try {
        new URL(o.redisUrl.includes("://") ? o.redisUrl : `redis://${o.redisUrl}`);
      } catch {
        return `Bad Redis URL "${o.redisUrl}"`;
      }
    }
  });
  return code ?? o as RatelimitServiceOptions;
}

function positive(v: string, name: string, zeroOk = false): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || (!zeroOk && n === 0)) {
    throw new Error(`${name} must be a positive integer`);
  }
  return n;
}

/** Runs `nuncio ratelimit ARGS` until SIGINT/SIGTERM; returns the exit code. */
export async function runRatelimitCommand(args: string[]): Promise<number> {
  const opts = parseRatelimitFlags(args);
  if (typeof opts === "number") return opts;
  return await runUntilSignal("the rate limit service", "ratelimit", () => startRatelimitService(opts));
}
