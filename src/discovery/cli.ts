/** `nuncio discovery`: flags of the standalone registry; runs until SIGINT/SIGTERM. */
import { durationFlag, parseRoleFlags, portFlag } from "../common/cli_args.ts";
import { runUntilSignal } from "../common/role.ts";
import { parseRedisUrl } from "../ratelimit/redis_address.ts";
import { type DiscoveryServiceOptions, startDiscoveryService } from "./run.ts";

const HELP =
  `nuncio discovery: the host registry (Lyft's v1 discovery API and Envoy v3 EDS over REST and gRPC)

Usage:
  nuncio discovery [--port N] [--grpc-port N] [--host ADDR] [--ttl 600s] [--sweep-interval 30s] [--redis URL] [--env NAME]

Options:
  --port N                 HTTP port: /v1/registration/..., POST /v3/discovery:endpoints, /healthcheck,
                           /stats (default 8080)
  --grpc-port N            gRPC port (h2c): EDS StreamEndpoints/DeltaEndpoints and ADS for endpoints
                           (default: none)
  --host ADDR              address to bind (default 0.0.0.0)
  --ttl D                  a host not checked in for D is expired and swept (default 600s)
  --sweep-interval D       how often expired hosts are removed (default 30s)
  --redis URL              redis://[user:pass@]host:port[/db]: hosts shared by replicas (default: memory)
  --redis-key-prefix P     prefix of every Redis key (default nuncio:discovery:)
  --redis-timeout-ms N     Redis command timeout (default 1000)
  --env NAME               the "env" of v1 answers (default production)
  -l, --log-level LEVEL    trace, debug, info, warn, error, critical, off (default info)
  -h, --help               this help

Durations: 600s, 10m, 1h, 500ms, or a number of seconds.
`;

/** Parses the `discovery` subcommand's flags; a number is an exit code (help or usage error). */
export function parseDiscoveryFlags(args: string[]): DiscoveryServiceOptions | number {
  const o: DiscoveryServiceOptions = { port: 8080, hostname: "0.0.0.0" };
  const code = parseRoleFlags(args, HELP, (name, value) => {
    switch (name) {
      case "--port":
        o.port = portFlag(value(), name);
        return true;
      case "--grpc-port":
        o.grpcPort = portFlag(value(), name);
        return true;
      case "--host":
        o.hostname = value();
        return true;
      case "--ttl":
        o.ttlMs = durationFlag(value(), name);
        return true;
      case "--sweep-interval":
        o.sweepIntervalMs = durationFlag(value(), name, true);
        return true;
      case "--redis":
        o.redisUrl = value();
        parseRedisUrl(o.redisUrl);
        return true;
      case "--redis-key-prefix":
        o.redisKeyPrefix = value();
        return true;
      case "--redis-timeout-ms": {
        const n = Number(value());
        if (!Number.isInteger(n) || n <= 0) throw new Error(`${name} must be a positive integer`);
        o.redisTimeoutMs = n;
        return true;
      }
      case "--env":
        o.env = value();
        return true;
    }
    return false;
  });
  return code ?? o;
}

/** Runs `nuncio discovery ARGS` until SIGINT/SIGTERM; returns the exit code. */
export async function runDiscoveryCommand(args: string[]): Promise<number> {
  const opts = parseDiscoveryFlags(args);
  if (typeof opts === "number") return opts;
  return await runUntilSignal("the registry", "discovery", () => startDiscoveryService(opts));
}
