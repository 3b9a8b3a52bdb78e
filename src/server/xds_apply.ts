/**
 * How xDS resources become data-plane state, shared by the main thread and every worker: each resource is
 * parsed with the same schema as the bootstrap (so a NACK names the field the way `--mode validate` would),
 * checked like a static resource before serving (TLS files, log paths), and applied to a DataPlane's listener
 * manager, route registry or cluster manager. The main thread validates a whole update first and rejects it
 * whole; workers re-parse the raw resources they are sent (parsed configs hold functions and cannot cross a
 * thread) and apply them.
 */
import type { z } from "zod/mini";
import type { Bootstrap } from "../config/bootstrap.ts";
import { formatPath, type PathSegment, UNKNOWN_FIELD } from "../config/errors.ts";
import { type ListenerConfig, listenerSchema } from "../config/listener.ts";
import { type RouteConfiguration, routeConfigurationSchema } from "../http/routing/config.ts";
import {
  type ClusterConfig,
  type ClusterLoadAssignment,
  clusterLoadAssignmentSchema,
  clusterSchema,
} from "../upstream/config.ts";
import type { DynamicClusterManager } from "../upstream/types.ts";
import { loadTlsRuntime, prepareTls } from "../transport/cert_store.ts";
import { prepareExtensions } from "../registry/prepare.ts";
import {
  resolveSecret,
  type SecretConfig,
  type SecretRegistry,
  secrets,
  secretSchema,
} from "../transport/secret.ts";
import { TYPE_URLS } from "../xds/types.ts";
import type { DataPlane } from "./data_plane.ts";
import { preServeChecks } from "./pre_serve_checks.ts";

/** The resource kinds nuncio applies. */
export type XdsKind = "listener" | "route" | "cluster" | "endpoint" | "secret";

/** Some resources of an update could not be applied (named in `failed`); the others were. */
export class PartialApplyError extends Error {
  constructor(message: string, readonly failed: string[]) {
    super(message);
  }
}

/** The kind of a type URL, or undefined for one nuncio does not apply. */
export function kindOf(typeUrl: string): XdsKind | undefined {
  switch (typeUrl) {
    case TYPE_URLS.listener:
      return "listener";
    case TYPE_URLS.route:
      return "route";
    case TYPE_URLS.cluster:
      return "cluster";
    case TYPE_URLS.endpoint:
      return "endpoint";
    case TYPE_URLS.secret:
      return "secret";
  }
  return undefined;
}

/** A parsed resource of each kind. */
export interface ParsedResources {
  listener: ListenerConfig;
  route: RouteConfiguration;
  cluster: ClusterConfig;
  endpoint: ClusterLoadAssignment;
  secret: SecretConfig;
}

const SCHEMAS: { [K in XdsKind]: z.ZodMiniType<ParsedResources[K]> } = {
  listener: listenerSchema as unknown as z.ZodMiniType<ListenerConfig>,
  route: routeConfigurationSchema as unknown as z.ZodMiniType<RouteConfiguration>,
  cluster: clusterSchema as unknown as z.ZodMiniType<ClusterConfig>,
  endpoint: clusterLoadAssignmentSchema as unknown as z.ZodMiniType<ClusterLoadAssignment>,
  secret: secretSchema as unknown as z.ZodMiniType<SecretConfig>,
};

/** The field naming a resource of each kind. */
const NAME_FIELD: Record<XdsKind, string> = {
  listener: "name",
  route: "name",
  cluster: "name",
  endpoint: "cluster_name",
  secret: "name",
};

/** Envoy's resource type names, for messages ("Listener \"x\": ..."). */
const TYPE_NAME: Record<XdsKind, string> = {
  listener: "Listener",
  route: "RouteConfiguration",
  cluster: "Cluster",
  endpoint: "ClusterLoadAssignment",
  secret: "Secret",
};

const MAX_ISSUES = 5;

/** A zod issue as `--mode validate` words it: unknown keys one by one, absent fields as missing. */
function issueText(i: z.core.$ZodIssue): string[] {
  const path = i.path as PathSegment[];
  if (i.code === "unrecognized_keys") {
    return i.keys.map((k) => `${formatPath([...path, k])}: ${UNKNOWN_FIELD}`);
  }
  const message = i.message.endsWith("received undefined") ? "Missing required field" : i.message;
  return [`${formatPath(path) || "(resource)"}: ${message}`];
}

/** Parses one resource; the error names the resource and each field path, as `--mode validate` would. */
export function parseResource<K extends XdsKind>(
  kind: K,
  name: string,
  raw: unknown,
): { ok: true; value: ParsedResources[K] } | { ok: false; message: string } {
  const what = `${TYPE_NAME[kind]} "${name}"`;
  const r = SCHEMAS[kind].safeParse(raw);
  if (!r.success) {
    const issues = r.error.issues.slice(0, MAX_ISSUES).flatMap(issueText);
    const more = r.error.issues.length > MAX_ISSUES
      ? ` (and ${r.error.issues.length - MAX_ISSUES} more)`
      : "";
    return { ok: false, message: `${what}: ${issues.join("; ")}${more}` };
  }
  const named = (r.data as Record<string, unknown>)[NAME_FIELD[kind]];
  if (named !== name) {
    return { ok: false, message: `${what}: its ${NAME_FIELD[kind]} is "${String(named)}"` };
  }
  return { ok: true, value: r.data };
}

/**
 * What serving would fail on beyond the schema (the same checks the bootstrap gets: certificate and key files,
 * log files that cannot be opened, each extension's preflight), for listeners and clusters. Clusters a
 * listener's routes name need not exist yet: they may arrive later (Envoy answers 503 NC until then).
 */
export async function checkResources(
  listeners: ReadonlyMap<string, ListenerConfig>,
  clusters: ReadonlyMap<string, ClusterConfig>,
  staticSecrets: ReadonlySet<string> = new Set(),
): Promise<string | undefined> {
  if (listeners.size === 0 && clusters.size === 0) return undefined;
  const b = {
    static_resources: { listeners: [...listeners.values()], clusters: [...clusters.values()] },
  } as unknown as Bootstrap;
  const issues = await preServeChecks(b, { clusterReferences: false, staticSecrets });
  if (issues.length === 0) return undefined;
  const names = [[...listeners.keys()], [...clusters.keys()]];
  return issues.slice(0, MAX_ISSUES).map((i) => {
    // static_resources.<listeners|clusters>[i].rest -> Listener "name": rest
    const [, list, index, ...rest] = i.path;
    const kind = list === "listeners" ? 0 : 1;
    const name = names[kind][index as number];
    return `${kind === 0 ? "Listener" : "Cluster"} "${name}": ${formatPath(rest)}: ${i.message}`;
  }).join("; ");
}

/** A parsed update ready to apply: resources by name (with their raw JSON) and removed names. */
export interface ParsedUpdate<K extends XdsKind = XdsKind> {
  kind: K;
  version: string;
  resources: Map<string, { value: ParsedResources[K]; raw: unknown }>;
  removed: string[];
}

/** Parses every resource of an update; the first failures make the whole update a rejection (message). */
export function parseUpdate<K extends XdsKind>(
  kind: K,
  version: string,
  resources: Iterable<[string, unknown]>,
  removed: string[],
): ParsedUpdate<K> | string {
  const out: ParsedUpdate<K> = { kind, version, resources: new Map(), removed };
  const errors: string[] = [];
  for (const [name, raw] of resources) {
    const r = parseResource(kind, name, raw);
    if (r.ok) out.resources.set(name, { value: r.value, raw });
    else errors.push(r.message);
  }
  return errors.length > 0 ? errors.slice(0, MAX_ISSUES).join("; ") : out;
}

/** Names of the bootstrap's static listeners and clusters (xDS may neither replace nor remove them). */
export function staticNames(b: Bootstrap): { listeners: Set<string>; clusters: Set<string> } {
  return {
    listeners: new Set(b.static_resources.listeners.map((l) => l.name)),
    clusters: new Set(b.static_resources.clusters.map((c) => c.name)),
  };
}

/** The EDS resource name of a cluster (eds_cluster_config.service_name, else its name); undefined if not EDS. */
export function edsServiceName(c: ClusterConfig): string | undefined {
  if (c.type !== "EDS") return undefined;
  const eds = (c as { eds_cluster_config?: { service_name?: string } }).eds_cluster_config;
  return eds?.service_name || c.name;
}

/**
 * Applies CDS or EDS to a cluster manager (the health owner first, then every worker's). EDS resources are
 * keyed by service name; each names every EDS cluster that uses it.
 */
export function applyToClusters(
  cm: DynamicClusterManager,
  u: ParsedUpdate,
  statics: Set<string>,
  reload = false,
): void {
  if (u.kind === "cluster") {
    if (reload) {
      // a bootstrap reload: static clusters change like CDS ones, and the static names follow
      for (const [name, { value }] of u.resources) {
        cm.addOrUpdate(value as ClusterConfig);
        statics.add(name);
      }
      for (const name of u.removed) {
        cm.remove(name);
        statics.delete(name);
      }
      return;
    }
    for (const name of u.resources.keys()) {
      if (statics.has(name)) throw new Error(`Cluster "${name}" is static and cannot be changed by xDS`);
    }
    for (const { value } of u.resources.values()) cm.addOrUpdate(value as ClusterConfig);
    for (const name of u.removed) if (!statics.has(name)) cm.remove(name);
    return;
  }
  if (u.kind !== "endpoint") return;
  // one pass over the clusters, not one per service (1,000 services x 1,000 clusters)
  const byService = new Map<string, string[]>();
  for (const name of cm.names()) {
    const config = cm.configOf(name);
    const service = config && edsServiceName(config);
    if (service === undefined || !u.resources.has(service)) continue;
    const list = byService.get(service);
    if (list) list.push(name);
    else byService.set(service, [name]);
  }
  for (const [service, { value }] of u.resources) {
    for (const name of byService.get(service) ?? []) cm.setEndpoints(name, value as ClusterLoadAssignment);
  }
}

/**
 * SDS: reads and checks every secret of an update (PEM parses, the key matches its certificate, the CA bundle
 * loads) with the TLS runtime serve uses; the first failures reject the update whole.
 */
export async function checkSecrets(u: ParsedUpdate<"secret">): Promise<string | undefined> {
  if (u.resources.size === 0) return undefined;
  await loadTlsRuntime();
  const errors: string[] = [];
  for (const [name, { value }] of u.resources) {
    try {
      resolveSecret(value);
    } catch (e) {
      errors.push(`Secret "${name}": ${(e as Error).message}`);
    }
  }
  return errors.length > 0 ? errors.slice(0, MAX_ISSUES).join("; ") : undefined;
}

/**
 * Installs an SDS update's secrets in an event loop's registry: TLS contexts naming them serve the new
 * certificate on new handshakes (and listeners warming on them start). Removed names keep their last value
 * (a context still using one keeps serving it, as Envoy).
 */
export async function applySecrets(registry: SecretRegistry, u: ParsedUpdate): Promise<void> {
  if (u.kind !== "secret") return;
  await loadTlsRuntime();
  const resolved = [...(u as ParsedUpdate<"secret">).resources].map(([name, { value }]) => {
    try {
      return [name, resolveSecret(value)] as const;
    } catch (e) {
      throw new Error(`Secret "${name}": ${(e as Error).message}`);
    }
  });
  for (const [name, r] of resolved) registry.set(name, r, u.version);
}

/**
 * Applies an update to one event loop's data plane (workers, or the main thread with --concurrency 1).
 * `reload` (a bootstrap reload) applies static listeners and clusters: they may replace and remove static ones,
 * and `statics` is updated to the new set of names.
 */
export async function applyToPlane(
  plane: DataPlane,
  u: ParsedUpdate,
  statics: ReturnType<typeof staticNames>,
  registry: SecretRegistry = secrets,
  reload = false,
) {
  if (u.kind === "listener" || u.kind === "cluster") {
    // a worker whose bootstrap had no TLS has not loaded the TLS runtime yet
    const values = [...u.resources.values()].map((r) => r.value);
    await prepareTls({
      static_resources: {
        listeners: u.kind === "listener" ? values as ListenerConfig[] : [],
        clusters: u.kind === "cluster" ? values as ClusterConfig[] : [],
      },
    });
    await prepareExtensions(values); // filters the bootstrap did not use are loaded on first use
  }
  switch (u.kind) {
    case "secret":
      await applySecrets(registry, u);
      return;
    case "listener": {
      for (const name of u.resources.keys()) {
        if (statics.listeners.has(name) && !reload) {
          throw new Error(`Listener "${name}" is static and cannot be changed by xDS`);
        }
      }
      // as Envoy's LDS: each listener applies on its own; the ones that fail (a port that cannot be bound)
      // are named in the NACK, and the caller records the others as applied
      const failed: string[] = [];
      const reasons: string[] = [];
      for (const [name, { value, raw }] of u.resources) {
        try {
          await plane.addOrUpdateListener(value as ListenerConfig, u.version, { raw, static: reload });
          if (reload) statics.listeners.add(name);
        } catch (e) {
          failed.push(name);
          reasons.push((e as Error).message);
        }
      }
      for (const name of u.removed) {
        if (reload) {
          await plane.removeListener(name, true);
          statics.listeners.delete(name);
        } else if (!statics.listeners.has(name)) await plane.removeListener(name);
      }
      if (failed.length > 0) throw new PartialApplyError(reasons.join("; "), failed);
      return;
    }
    case "route":
      for (const [name, { value }] of u.resources) {
        plane.setRouteConfig(name, value as RouteConfiguration, u.version);
      }
      return;
    case "cluster":
    case "endpoint":
      applyToClusters(plane.clusters as DynamicClusterManager, u, statics.clusters, reload);
  }
}
