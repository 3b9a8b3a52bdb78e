// deno-lint-ignore-file no-explicit-any -- extensions of every config type live in one registry; typed at their use sites
/**
 * The extension registry (Caddy style): extensions register a factory under their Envoy name and
 * @type URLs; config loading finds the factory and lets it validate its own typed_config.
 * Core code only ever talks to this registry; `builtin.ts` is the one file importing every extension.
 */
import type { z } from "zod/mini";

/** The kinds of extension points. */
export type ExtensionCategory =
  | "network_filter"
  | "http_filter"
  | "access_logger"
  | "transport_socket"
  | "cluster"
  | "upstream_protocol_options"
  | "bootstrap_extension"
  | "compressor"
  | "decompressor"
  | "tracer"
  | "stats_sink";

/** One registered extension: its names, its config schema and its factory. */
export interface Extension<C = unknown, F = unknown> {
  /** Envoy extension name, e.g. "envoy.filters.network.tcp_proxy". */
  readonly name: string;
  /** Accepted "@type" URLs for typed_config. */
  readonly typeUrls: readonly string[];
  /** The category it plugs into. */
  readonly category: ExtensionCategory;
  /** Network and HTTP filters: true when the filter ends its chain (tcp_proxy, http_connection_manager, router). */
  readonly terminal?: boolean;
  /** Validates typed_config (without "@type"); its error paths are relative to typed_config. */
  readonly schema: z.ZodMiniType<C>;
  /** Builds the long-lived factory for one config snapshot (the FilterConfig of Envoy). */
  readonly create: F;
  /**
   * Loads the implementation `create` needs (a literal dynamic import, visible to `deno compile`), so an
   * extension few configs use keeps its code out of every isolate until one does; `prepareExtensions` awaits it
   * for every extension a config names before anything is created. Absent: the implementation is loaded.
   */
  load?(): Promise<void>;
  /** HTTP filters: validates a typed_per_filter_config entry (without "@type"); absent = no per-route config. */
  readonly perRouteSchema?: z.ZodMiniType;
  /** "@type" URLs of the per-route message (default: `typeUrls`). */
  readonly perRouteTypeUrls?: readonly string[];
  /**
   * The clusters a parsed config names (paths relative to typed_config); runs once at load, so a missing
   * cluster fails validation as it fails Envoy's start. Extension refs nested in the config are found by the caller.
   */
  clusterRefs?(config: C): ClusterRef[];
  /**
   * Checks what serving will need outside the config (files it reads or opens) without changing anything;
   * runs once at load (validate and serve), never per request. Paths are relative to typed_config.
   */
  preflight?(config: C): PreflightIssue[];
}

/** A cluster named by an extension's config: the field's path relative to typed_config, and the name. */
export interface ClusterRef {
  /** Path of the field holding the name, e.g. ["rate_limit_service", "grpc_service", "envoy_grpc", "cluster_name"]. */
  path: (string | number)[];
  /** The cluster name. */
  name: string;
}

/** A problem found by `preflight`: the field's path relative to typed_config and what is wrong. */
export interface PreflightIssue {
  /** Path of the field, e.g. ["path"]. */
  path: (string | number)[];
  /** What is wrong, capitalized, without a final period. */
  message: string;
}

/** Name -> extension lookup per category. */
export class Registry {
  #byName = new Map<string, Extension<any, any>>();
  #byType = new Map<string, Extension<any, any>>();

  /** Adds an extension; throws on a duplicate name or type URL. */
  register(ext: Extension<any, any>): void {
    const key = `${ext.category}/${ext.name}`;
    if (this.#byName.has(key)) throw new Error(`Extension ${ext.name} registered twice`);
    this.#byName.set(key, ext);
    for (const t of ext.typeUrls) this.#byType.set(`${ext.category}/${t}`, ext);
    if (ext.perRouteSchema) {
      for (const t of ext.perRouteTypeUrls ?? ext.typeUrls) this.#byType.set(`per_route/${t}`, ext);
    }
  }

  /** Finds the HTTP filter whose per-route schema parses typed_per_filter_config entries of `typeUrl`. */
  findPerRoute(typeUrl: string): Extension<any, any> | undefined {
    return this.#byType.get(`per_route/${typeUrl}`);
  }

  /** Finds an extension by @type URL first (Envoy's rule), then by name. */
  find(
    category: ExtensionCategory,
    name: string | undefined,
    typeUrl: string | undefined,
  ): Extension<any, any> | undefined {
    if (typeUrl) {
      const byType = this.#byType.get(`${category}/${typeUrl}`) ??
        // as Envoy: only the message name after the last "/" counts, whatever the host part says
        this.#byType.get(`${category}/type.googleapis.com/${typeUrl.slice(typeUrl.lastIndexOf("/") + 1)}`);
      if (byType) return byType;
    }
    return name ? this.#byName.get(`${category}/${name}`) : undefined;
  }

  /** Every registered extension of a category (for /server_info and README tables). */
  list(category: ExtensionCategory): Extension<any, any>[] {
    return [...this.#byName.values()].filter((e) => e.category === category);
  }
}

/** The process-wide registry; `builtin.ts` fills it, config loading reads it. */
export const registry: Registry = new Registry();
