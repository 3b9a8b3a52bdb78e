/**
 * The control plane's inputs: service manifests (one YAML per service, owned by its team), the defaults file
 * (owned by the network team: ports, default values and bounds of every knob teams may set, secrets, HDS) and
 * the edge routes file. Each is validated with the bootstrap loader's machinery, so every problem reads
 * `file:line:col: field.path: message`; checks across files (an upstream without a manifest, a knob outside the
 * network team's bounds, two manifests claiming one service) are positioned in the file that is wrong.
 *
 * A bad file never takes good ones down: `loadInputs` returns every file that passed and every error, and the
 * caller (the control plane) keeps the last good version of each file that failed.
 */
import { z } from "zod/mini";
import { durationMs } from "../common/cli_args.ts";
import type { ConfigError, ConfigIssue, PathSegment } from "../config/errors.ts";
import { parseDocumentWith, positionIssues } from "../config/load.ts";
import { integer } from "../config/schema_util.ts";
import { checkName } from "../discovery/types.ts";

/** A duration as people write it in manifests: "250ms", "2s", "1.5m", "1h"; parses to milliseconds. */
export const humanDuration = z.pipe(
  z.union([z.string(), z.number()]),
  z.transform((v, ctx) => {
    const ms = typeof v === "string" ? durationMs(v, null) : undefined;
    if (ms === undefined) {
      ctx.issues.push({
        code: "custom",
        input: v,
        message: 'Invalid duration: expected a string like "250ms", "2s", "1m" or "1h"',
      });
      return z.NEVER;
    }
    return ms;
  }),
);

const port = integer.check(z.minimum(1), z.maximum(65535));
const count = integer.check(z.minimum(0));
const serviceName = z.string().check(
  z.refine((s) => {
    try {
      checkName(s);
      return true;
    } catch {
      return false;
    }
  }, { error: "Expected a service name: letters, digits, '.', '_' and '-', at most 128 characters" }),
);

/** The knobs a manifest may set on one upstream, each bounded by the defaults file. */
const KNOBS = {
  timeout: "duration",
  per_try_timeout: "duration",
  retries: "count",
  max_connections: "count",
  max_pending_requests: "count",
  max_requests: "count",
  max_retries: "count",
  consecutive_5xx: "count",
  base_ejection_time: "duration",
  max_ejection_percent: "count",
  requests_per_second: "count",
} as const;
/** One knob's name. */
export type Knob = keyof typeof KNOBS;
/** Every knob, in a fixed order. */
export const KNOB_NAMES = Object.keys(KNOBS) as Knob[];

const durationBound = z.strictObject({
  default: z.optional(humanDuration),
  min: z.optional(humanDuration),
  max: z.optional(humanDuration),
});
const countBound = z.strictObject({
  default: z.optional(count),
  min: z.optional(count),
  max: z.optional(count),
});

const RETRY_ON = [
  "5xx",
  "gateway-error",
  "reset",
  "reset-before-request",
  "connect-failure",
  "retriable-4xx",
  "refused-stream",
  "retriable-status-codes",
  "retriable-headers",
  "envoy-ratelimited",
  "http3-post-connect-failure",
  "cancelled",
  "deadline-exceeded",
  "internal",
  "resource-exhausted",
  "unavailable",
];
/** Retry conditions, comma separated; spaces dropped (Envoy and gRPC split on "," alone). */
const retryOn = z.pipe(
  z.string().check(z.refine((s) => s.split(",").every((p) => RETRY_ON.includes(p.trim())), {
    error: `Expected a comma-separated list of: ${RETRY_ON.join(", ")}`,
  })),
  z.transform((s) => s.split(",").map((p) => p.trim()).join(",")),
);

const healthCheckDefaults = z.strictObject({
  interval: z.optional(humanDuration),
  timeout: z.optional(humanDuration),
  unhealthy_threshold: z.optional(integer.check(z.minimum(1))),
  healthy_threshold: z.optional(integer.check(z.minimum(1))),
});

/** The network team's file. */
export const defaultsSchema = z.strictObject({
  /** Port of the ingress listener in front of each service (what other proxies reach). */
  ingress_port: z._default(port, 9211),
  /** Address the ingress listener binds (default 0.0.0.0). */
  ingress_address: z._default(z.string().check(z.minLength(1)), "0.0.0.0"),
  /** Port of the local egress listener a service calls (127.0.0.1) with `Host: <service>`. */
  egress_port: z._default(port, 9001),
  /** Upstream connect timeout (default 1s). */
  connect_timeout: z._default(humanDuration, 1000),
  /** Timeout of the ingress route to the local service (default 0: none but the service's own). */
  ingress_timeout: z._default(humanDuration, 0),
  /** Retry conditions of an upstream route when its manifest does not say (default "5xx,connect-failure,refused-stream"). */
  retry_on: z._default(retryOn, "5xx,connect-failure,refused-stream"),
  /** Defaults of a manifest's health_check. */
  health_check: z._default(healthCheckDefaults, {}),
  /** Default value, minimum and maximum of each knob a manifest may set. */
  limits: z._default(
    z.strictObject(
      Object.fromEntries(
        KNOB_NAMES.map((k) => [k, z.optional(KNOBS[k] === "duration" ? durationBound : countBound)]),
      ) as Record<Knob, z.ZodMiniOptional<typeof durationBound | typeof countBound>>,
    ),
    {},
  ),
  /** Certificates served over SDS, read from files (re-read when they change). */
  secrets: z._default(
    z.array(z.strictObject({
      name: z.string().check(z.minLength(1)),
      certificate_chain: z.optional(z.string().check(z.minLength(1))),
      private_key: z.optional(z.string().check(z.minLength(1))),
      trusted_ca: z.optional(z.string().check(z.minLength(1))),
    })),
    [],
  ),
  /** Central health checking: how many proxies check each endpoint, and how often they report. */
  hds: z._default(
    z.strictObject({
      checkers_per_endpoint: z._default(integer.check(z.minimum(1)), 2),
      interval: z._default(humanDuration, 10_000),
    }),
    { checkers_per_endpoint: 2, interval: 10_000 },
  ),
  /** How proxies fetch endpoints: over their ADS stream (default) or by REST polling of a static cluster. */
  eds: z._default(
    z.union([
      z.literal("ads"),
      z.strictObject({
        rest_cluster: z.string().check(z.minLength(1)),
        refresh_delay: z._default(humanDuration, 1000),
      }),
    ]),
    "ads",
  ),
});
/** The parsed defaults file. */
export type Defaults = z.output<typeof defaultsSchema>;

const upstreamSchema = z.strictObject({
  /** The service called (it must have a manifest). */
  service: serviceName,
  timeout: z.optional(humanDuration),
  per_try_timeout: z.optional(humanDuration),
  retries: z.optional(count),
  retry_on: z.optional(retryOn),
  circuit_breakers: z.optional(z.strictObject({
    max_connections: z.optional(count),
    max_pending_requests: z.optional(count),
    max_requests: z.optional(count),
    max_retries: z.optional(count),
  })),
  outlier_detection: z.optional(z.strictObject({
    consecutive_5xx: z.optional(count),
    base_ejection_time: z.optional(humanDuration),
    max_ejection_percent: z.optional(count),
  })),
  rate_limit: z.optional(z.strictObject({ requests_per_second: integer.check(z.minimum(1)) })),
  /**
   * Share of requests (0-100) sent to the service's canary hosts (registered with tag canary=true), the rest
   * to the others; absent: canary hosts take their share like any host.
   */
  canary_percent: z.optional(integer.check(z.minimum(0), z.maximum(100))),
});
/** One upstream of a manifest. */
export type Upstream = z.output<typeof upstreamSchema>;

const tcpUpstreamSchema = z.strictObject({
  /** The registry service of the database or cache hosts. */
  service: serviceName,
  /** Local port the service connects to (127.0.0.1). */
  port,
  /** Idle timeout of the proxied connections (default Envoy's 1h). */
  idle_timeout: z.optional(humanDuration),
  max_connections: z.optional(count),
  /**
   * What speaks on it: `mongo` puts Envoy's mongo_proxy (wire-protocol stats) before tcp_proxy, `redis` makes the
   * listener a redis_proxy sharding keys over the service's hosts (RING_HASH); `tcp` (default) a byte pipe.
   */
  protocol: z._default(z.enum(["tcp", "mongo", "redis"]), "tcp"),
  /** New connections per second the local proxy lets through (Lyft's guard in front of Mongo); none: no limit. */
  connections_per_second: z.optional(count),
});

/** A service's manifest. */
export const manifestSchema = z.strictObject({
  /** The service (node.cluster of its proxies, its name in the registry). */
  service: serviceName,
  /** Team that owns it (shown in reports). */
  owner: z.optional(z.string()),
  /** The port the service listens on, locally (127.0.0.1). */
  port,
  /** How the service speaks: http1 (default), http2 or grpc (HTTP/2 to it and to its upstream clusters). */
  protocol: z._default(z.enum(["http1", "http2", "grpc"]), "http1"),
  health_check: z.optional(z.strictObject({
    path: z.string().check(z.startsWith("/")),
    ...healthCheckDefaults.shape,
  })),
  upstreams: z._default(z.array(upstreamSchema), []),
  databases: z._default(z.array(tcpUpstreamSchema), []),
  caches: z._default(z.array(tcpUpstreamSchema), []),
});
/** A parsed manifest. */
export type Manifest = z.output<typeof manifestSchema>;

const edgeRouteSchema = z.strictObject({
  prefix: z.string().check(z.startsWith("/")),
  service: serviceName,
  prefix_rewrite: z.optional(z.string()),
  timeout: z.optional(humanDuration),
  retries: z.optional(count),
  retry_on: z.optional(retryOn),
});

/** The edge routes file. */
export const edgeSchema = z.strictObject({
  /** node.cluster of the edge proxies (default "edge"). */
  node_cluster: z._default(serviceName, "edge"),
  /** Port of the edge listener. */
  port,
  /** Address it binds (default 0.0.0.0). */
  address: z._default(z.string().check(z.minLength(1)), "0.0.0.0"),
  /** A secret (from the defaults file) to terminate TLS with; absent: plain HTTP. */
  tls_secret: z.optional(z.string().check(z.minLength(1))),
  /** Host names served (default any). */
  domains: z._default(z.array(z.string().check(z.minLength(1))), ["*"]),
  routes: z.array(edgeRouteSchema).check(z.minLength(1)),
});
/** The parsed edge file. */
export type Edge = z.output<typeof edgeSchema>;

/** A file that passed, with its text's content hash (for reports). */
export interface Loaded<T> {
  file: string;
  value: T;
}

/** What `loadInputs` read: every file that passed, and every error of those that did not. */
export interface InputSet {
  defaults?: Loaded<Defaults>;
  edge?: Loaded<Edge>;
  /** Manifests that passed every check, by service. */
  manifests: Map<string, Loaded<Manifest>>;
  /** Files rejected (their errors are in `errors`), by path. */
  rejected: Set<string>;
  /** Rejected files whose last good version (from `previous`) is in this set instead. */
  kept: Set<string>;
  /** What was parsed, for the next load to skip files whose text did not change. */
  parsed: ParseCache;
  errors: ConfigError[];
}

/** Where the inputs are. */
export interface InputPaths {
  manifests: string;
  defaults: string;
  edge?: string;
}

/** A file that passed its schema: its value, and how to position issues found in it later. */
interface Doc<T> {
  value: T;
  /** Positions issues (paths into the file) as errors; re-parses the text when it came from the cache. */
  position(issues: readonly ConfigIssue[]): ConfigError[];
}

/** Parsed files by path with their text: a reload re-parses only files whose text changed. */
export type ParseCache = Map<string, { text: string; value: unknown }>;

async function readDoc<S extends z.ZodMiniType>(
  schema: S,
  path: string,
  errors: ConfigError[],
  cache: { prev?: ParseCache; next: ParseCache },
): Promise<Doc<z.output<S>> | undefined> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    const message = e instanceof Deno.errors.NotFound ? "File not found" : `Cannot read file: ${e}`;
    errors.push({ file: path, line: 0, column: 0, path: "", message });
    return undefined;
  }
  const hit = cache.prev?.get(path);
  if (hit !== undefined && hit.text === text) {
    cache.next.set(path, hit);
    return {
      value: hit.value as z.output<S>,
      position: (issues) => {
        const r = parseDocumentWith(schema, text, path);
        return r.ok ? positionIssues(r, path, issues) : r.errors;
      },
    };
  }
  const r = parseDocumentWith(schema, text, path);
  if (!r.ok) {
    errors.push(...r.errors);
    return undefined;
  }
  cache.next.set(path, { text, value: r.value });
  return { value: r.value, position: (issues) => positionIssues(r, path, issues) };
}

/** The manifest files of a directory: *.yaml, *.yml and *.json, sorted by name. */
export async function manifestFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (e.isFile && /\.(ya?ml|json)$/i.test(e.name) && !e.name.startsWith(".")) out.push(`${dir}/${e.name}`);
  }
  return out.sort();
}

/**
 * Reads and checks every input. Cross-file checks: a knob outside the defaults' bounds, an upstream or edge
 * route naming a service without a manifest, a service claimed by two manifests, a local port used twice in
 * one manifest or colliding with the ingress/egress ports, an edge `tls_secret` the defaults do not define.
 */
export async function loadInputs(paths: InputPaths, previous?: InputSet): Promise<InputSet> {
  const errors: ConfigError[] = [];
  const rejected = new Set<string>();
  const kept = new Set<string>();
  const set: InputSet = { manifests: new Map(), rejected, kept, errors, parsed: new Map() };
  const cache = { prev: previous?.parsed, next: set.parsed };
  const d = await readDoc(defaultsSchema, paths.defaults, errors, cache);
  if (d) {
    const issues = await checkDefaults(d.value);
    if (issues.length > 0) errors.push(...d.position(issues));
    else set.defaults = { file: paths.defaults, value: d.value };
  }
  if (!set.defaults) {
    rejected.add(paths.defaults);
    if (previous?.defaults) {
      set.defaults = previous.defaults;
      kept.add(paths.defaults);
    }
  }
  let files: string[] = [];
  try {
    files = await manifestFiles(paths.manifests);
  } catch (e) {
    errors.push({
      file: paths.manifests,
      line: 0,
      column: 0,
      path: "",
      message: `Cannot read directory: ${e}`,
    });
  }
  const lastGood = new Map<string, Loaded<Manifest>>();
  for (const m of previous?.manifests.values() ?? []) lastGood.set(m.file, m);
  const keep = (file: string) => {
    const m = lastGood.get(file);
    if (m && !set.manifests.has(m.value.service)) {
      set.manifests.set(m.value.service, m);
      kept.add(file);
    }
  };
  const docs: { file: string; doc: Doc<Manifest> }[] = [];
  for (const file of files) {
    const m = await readDoc(manifestSchema, file, errors, cache);
    if (m) docs.push({ file, doc: m });
    else rejected.add(file);
  }
  // a service claimed twice: the first file (by name) keeps it
  const owners = new Map<string, string>();
  for (const { file, doc } of docs) {
    const prior = owners.get(doc.value.service);
    if (prior !== undefined) {
      errors.push(...doc.position([issue(["service"], `Service already defined by ${prior}`)]));
      rejected.add(file);
      continue;
    }
    owners.set(doc.value.service, file);
  }
  const known = new Set(owners.keys());
  // a file that does not parse keeps its last good version, which others may name
  for (const file of rejected) {
    const m = lastGood.get(file);
    if (m && !owners.has(m.value.service)) known.add(m.value.service);
  }
  for (const { file, doc } of docs) {
    if (rejected.has(file)) continue;
    const issues = checkManifest(doc.value, known, set.defaults?.value);
    if (issues.length > 0) {
      errors.push(...doc.position(issues));
      rejected.add(file);
    } else set.manifests.set(doc.value.service, { file, value: doc.value });
  }
  for (const file of rejected) keep(file);
  if (paths.edge !== undefined) {
    const e = await readDoc(edgeSchema, paths.edge, errors, cache);
    if (e) {
      const issues = checkEdge(e.value, known, set.defaults?.value);
      if (issues.length > 0) errors.push(...e.position(issues));
      else set.edge = { file: paths.edge, value: e.value };
    }
    if (!set.edge) {
      rejected.add(paths.edge);
      if (previous?.edge) {
        set.edge = previous.edge;
        kept.add(paths.edge);
      }
    }
  }
  errors.sort((
    a,
    b,
  ) => (a.file < b.file ? -1 : a.file > b.file ? 1 : a.line - b.line || a.column - b.column));
  return set;
}

/** The defaults' secret files must be readable. */
async function checkDefaults(d: Defaults): Promise<ConfigIssue[]> {
  const out: ConfigIssue[] = [];
  for (const [i, s] of d.secrets.entries()) {
    if (s.certificate_chain === undefined && s.trusted_ca === undefined) {
      out.push(issue(["secrets", i], "A secret needs certificate_chain and private_key, or trusted_ca"));
    }
    if ((s.certificate_chain === undefined) !== (s.private_key === undefined)) {
      out.push(issue(["secrets", i], "certificate_chain and private_key go together"));
    }
    for (const k of ["certificate_chain", "private_key", "trusted_ca"] as const) {
      const f = s[k];
      if (f === undefined) continue;
      try {
        await Deno.stat(f);
      } catch (e) {
        out.push(issue(["secrets", i, k], `Cannot read ${f}: ${(e as Error).message}`));
      }
    }
  }
  return out;
}

function issue(path: PathSegment[], message: string): ConfigIssue {
  return { path, message };
}

/** The value of a knob an upstream sets (milliseconds for durations), or undefined. */
export function knobValue(u: Upstream, k: Knob): number | undefined {
  switch (k) {
    case "timeout":
    case "per_try_timeout":
    case "retries":
      return u[k];
    case "max_connections":
    case "max_pending_requests":
    case "max_requests":
    case "max_retries":
      return u.circuit_breakers?.[k];
    case "consecutive_5xx":
    case "base_ejection_time":
    case "max_ejection_percent":
      return u.outlier_detection?.[k];
    case "requests_per_second":
      return u.rate_limit?.requests_per_second;
  }
}

function knobPath(k: Knob): PathSegment[] {
  switch (k) {
    case "max_connections":
    case "max_pending_requests":
    case "max_requests":
    case "max_retries":
      return ["circuit_breakers", k];
    case "consecutive_5xx":
    case "base_ejection_time":
    case "max_ejection_percent":
      return ["outlier_detection", k];
    case "requests_per_second":
      return ["rate_limit", k];
    default:
      return [k];
  }
}

function show(k: Knob, v: number): string {
  return KNOBS[k] === "duration" ? `${v}ms` : String(v);
}

/** Issues of one manifest against the set of known services and the defaults (bounds, ports). */
export function checkManifest(
  m: Manifest,
  known: ReadonlySet<string>,
  d: Defaults | undefined,
): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  const seen = new Set<string>();
  m.upstreams.forEach((u, i) => {
    if (!known.has(u.service)) {
      out.push(issue(["upstreams", i, "service"], `No manifest for service '${u.service}'`));
    }
    if (u.service === m.service) {
      out.push(issue(["upstreams", i, "service"], "A service cannot be its own upstream"));
    }
    if (seen.has(u.service)) {
      out.push(issue(["upstreams", i, "service"], `Upstream '${u.service}' listed twice`));
    }
    seen.add(u.service);
    if (!d) return;
    for (const k of KNOB_NAMES) {
      const v = knobValue(u, k);
      const b = d.limits[k];
      if (v === undefined || !b) continue;
      if (b.min !== undefined && v < b.min) {
        out.push(
          issue(
            ["upstreams", i, ...knobPath(k)],
            `${k} ${show(k, v)} is below the minimum ${show(k, b.min)}`,
          ),
        );
      }
      if (b.max !== undefined && v > b.max) {
        out.push(
          issue(
            ["upstreams", i, ...knobPath(k)],
            `${k} ${show(k, v)} is above the maximum ${show(k, b.max)}`,
          ),
        );
      }
    }
  });
  const tcpServices = new Set([...m.databases, ...m.caches].map((t) => t.service));
  m.upstreams.forEach((u, i) => {
    if (tcpServices.has(u.service)) {
      out.push(
        issue(["upstreams", i, "service"], `'${u.service}' is also a database or cache of this service`),
      );
    }
  });
  const ports = new Map<number, string>();
  if (d) {
    ports.set(d.ingress_port, "the ingress port");
    ports.set(d.egress_port, "the egress port");
  }
  for (const kind of ["databases", "caches"] as const) {
    m[kind].forEach((t, i) => {
      const prior = ports.get(t.port);
      if (prior !== undefined) out.push(issue([kind, i, "port"], `Port ${t.port} is already ${prior}`));
      ports.set(t.port, `used by ${kind}[${i}]`);
    });
  }
  return out;
}

/** Issues of the edge file. */
export function checkEdge(e: Edge, known: ReadonlySet<string>, d: Defaults | undefined): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  if (known.has(e.node_cluster)) {
    out.push(
      issue(
        ["node_cluster"],
        `'${e.node_cluster}' is a service with a manifest; the edge needs its own name`,
      ),
    );
  }
  e.routes.forEach((r, i) => {
    if (!known.has(r.service)) {
      out.push(issue(["routes", i, "service"], `No manifest for service '${r.service}'`));
    }
    const b = d?.limits.timeout;
    if (r.timeout !== undefined && b?.max !== undefined && r.timeout > b.max) {
      out.push(issue(["routes", i, "timeout"], `timeout ${r.timeout}ms is above the maximum ${b.max}ms`));
    }
  });
  if (e.tls_secret !== undefined && d && !d.secrets.some((s) => s.name === e.tls_secret)) {
    out.push(issue(["tls_secret"], `No secret '${e.tls_secret}' in the defaults file`));
  }
  return out;
}
