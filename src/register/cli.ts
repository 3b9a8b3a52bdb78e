/** `nuncio register`: the check-in agent's flags; checks in until SIGTERM/SIGINT, then deregisters and exits 0. */
import { durationFlag, parseRoleFlags } from "../common/cli_args.ts";
import { Logger } from "../common/log.ts";
import { RegistrationAgent } from "./agent.ts";
import {
  DEFAULT_EVERY_MS,
  DEFAULT_JITTER,
  DEFAULT_REGISTRY_URL,
  defaultHostIp,
  httpUrlProblem,
  isIpAddress,
  parseJitter,
  type RegistrationOptions,
  type RegistrationTags,
  serviceNameProblem,
  setTag,
} from "./options.ts";

const HELP = `nuncio register: checks this host in to a nuncio discovery registry (Lyft's v1 API)

Usage:
  nuncio register --service NAME --port P [--registry URL] [--every 60s] [--tag k=v ...]

Checks in at start and every interval (± jitter), retries failures with backoff and never exits on its own;
on SIGTERM or SIGINT it deregisters (DELETE) and exits 0.

Options:
  --service NAME         the service to register under (required)
  --port P               the port the service answers on (required)
  --ip ADDR              the address to register (default: the host's first non-loopback IPv4, else 127.0.0.1)
  --registry URL         the registry (default ${DEFAULT_REGISTRY_URL})
  --every DURATION       check-in interval: 60s, 500ms, 5m (default 60s)
  --jitter PERCENT       spread of each interval, 0% to 99% (default 10%)
  --revision R           the deployed revision (sent as revision)
  --repo NAME            the service's repository (sent as service_repo_name)
  --tag k=v              az, region, instance_id, canary (true|false), load_balancing_weight (positive
                         integer); repeatable
  --health-url URL       check in only while a GET of URL answers 2xx (otherwise the registry's TTL sweeps
                         the host)
  --timeout DURATION     timeout of each registry or health request (default 5s)
  -l, --log-level LEVEL  trace, debug, info, warn, error, critical, off (default info)
  -h, --help             this help
`;

/** Parses the `register` subcommand's flags; a number is an exit code (help or usage error). */
export function parseRegisterFlags(
  args: string[],
  hostIp: () => string = defaultHostIp,
): RegistrationOptions | number {
  const o: Partial<RegistrationOptions> = {
    registryUrl: DEFAULT_REGISTRY_URL,
    everyMs: DEFAULT_EVERY_MS,
    jitter: DEFAULT_JITTER,
  };
  const tags: RegistrationTags = {};
  const code = parseRoleFlags(args, HELP, (name, value) => {
    switch (name) {
      case "--service": {
        const v = value();
        const why = serviceNameProblem(v);
        if (why) throw new Error(why);
        o.service = v;
        return true;
      }
      case "--port": {
        const v = value();
        const n = /^\d+$/.test(v) ? Number(v) : NaN;
        if (!(n >= 1 && n <= 65535)) throw new Error(`--port must be a port number (1-65535), not "${v}"`);
        o.port = n;
        return true;
      }
      case "--ip": {
        const v = value();
        if (!isIpAddress(v)) throw new Error(`--ip must be an IPv4 or IPv6 address, not "${v}"`);
        o.ip = v;
        return true;
      }
      case "--registry":
      case "--health-url": {
        const v = value();
        const why = httpUrlProblem(v);
        if (why) throw new Error(`${name}: ${why}`);
        if (name === "--registry") o.registryUrl = v;
        else o.healthUrl = v;
        return true;
      }
      case "--every":
        o.everyMs = durationFlag(value(), name);
        return true;
      case "--timeout":
        o.requestTimeoutMs = durationFlag(value(), name);
        return true;
      case "--jitter":
        o.jitter = parseJitter(value(), name);
        return true;
      case "--revision":
        o.revision = value();
        return true;
      case "--repo":
        o.repo = value();
        return true;
      case "--tag":
        setTag(tags, value());
        return true;
    }
    return false;
  }, () => {
    if (!o.service) return "--service is required";
    if (!o.port) return "--port is required";
  });
  if (code !== undefined) return code;
  o.ip ??= hostIp();
  if (Object.keys(tags).length) o.tags = tags;
  return o as RegistrationOptions;
}

/** Runs `nuncio register ARGS` until SIGINT/SIGTERM, then deregisters; returns the exit code. */
export async function runRegisterCommand(args: string[]): Promise<number> {
  const opts = parseRegisterFlags(args);
  if (typeof opts === "number") return opts;
  const log = new Logger("register");
  const agent = new RegistrationAgent(opts, { log });
  const { promise: quit, resolve } = Promise.withResolvers<void>();
  Deno.addSignalListener("SIGINT", resolve);
  Deno.addSignalListener("SIGTERM", resolve);
  agent.start();
  await quit;
  Deno.removeSignalListener("SIGINT", resolve);
  Deno.removeSignalListener("SIGTERM", resolve);
  log.info("shutting down: deregistering");
  await agent.stop();
  return 0;
}
