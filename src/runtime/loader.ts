/**
 * Envoy's runtime loader (Runtime::LoaderImpl) on the main thread: builds a snapshot from the configured layers
 * at start, again when a disk layer's symlink root is swapped (a watch on its parent directory, as Envoy's
 * inotify watch for MovedTo) and when `/runtime_modify` changes the admin layer, and publishes each one to every
 * event loop. Counts `runtime.*` as Envoy does. Only the main thread reads files.
 */
import { Logger } from "../common/log.ts";
import type { Scope } from "../stats/store.ts";
import type { Counter, Gauge } from "../stats/store.ts";
import type { LayeredRuntimeConfig, RuntimeLayerConfig } from "./config.ts";
import { AdminLayer, diskLayerValues, staticLayerValues } from "./layers.ts";
import { type LayerValues, type RuntimeEntry, RuntimeSnapshot } from "./snapshot.ts";

const log = new Logger("runtime");

/** Thrown by `mergeValues` when no admin layer is configured (/runtime_modify answers 503 with it). */
export class NoAdminLayerError extends Error {
  constructor() {
    super("No admin layer specified");
  }
}

/** What the loader needs. */
export interface RuntimeLoaderOptions {
  /** The service cluster (node.cluster after --service-cluster) for `append_service_cluster`. */
  serviceCluster: string;
  /** The main thread's root scope (`runtime.*` stats). */
  stats: Scope;
  /** Hands a new snapshot to every event loop; resolves once each has it. */
  publish(s: RuntimeSnapshot): Promise<void>;
}

interface Stats {
  load_error: Counter;
  load_success: Counter;
  override_dir_exists: Counter;
  override_dir_not_exists: Counter;
  deprecated_feature_use: Counter;
  admin_overrides_active: Gauge;
  deprecated_feature_seen_since_process_start: Gauge;
  num_keys: Gauge;
  num_layers: Gauge;
}

/** A configured layer, prepared once. */
type Layer =
  | { kind: "static"; name: string; values: Map<string, RuntimeEntry> }
  | { kind: "disk"; name: string; path: string }
  | { kind: "admin"; layer: AdminLayer };

/** An absolute, normalized path (Deno's watch events carry absolute paths). */
function absolute(p: string): string {
  const abs = p.startsWith("/") ? p : `${Deno.cwd()}/${p}`;
  const out: string[] = [];
  for (const seg of abs.split("/")) {
    if (seg === "" || seg === ".") continue;
    if (seg === "..") out.pop();
    else out.push(seg);
  }
  return "/" + out.join("/");
}

function parentOf(p: string): string {
  const i = p.lastIndexOf("/");
  return i <= 0 ? "/" : p.slice(0, i);
}

/** The layers Envoy runs: `layered_runtime` as given, an admin layer when it lists none, nothing when absent. */
export function effectiveLayers(config: LayeredRuntimeConfig | undefined): RuntimeLayerConfig[] {
  if (config === undefined) return [];
  return config.layers.length > 0 ? config.layers : [{ name: "", admin_layer: {} }];
}

/** The main thread's runtime: layers, watches, admin overrides, stats. */
export class RuntimeLoader {
  readonly #layers: Layer[];
  readonly #admin: AdminLayer | undefined;
  readonly #stats: Stats;
  readonly #publish: (s: RuntimeSnapshot) => Promise<void>;
  /** Absolute symlink roots watched, and a watcher per parent directory. */
  readonly #roots = new Set<string>();
  #watchers: Deno.FsWatcher[] = [];
  #snapshot: RuntimeSnapshot = new RuntimeSnapshot([], 0);
  #version = 0;
  /** Serializes loads so snapshots reach event loops in order. */
  #chain: Promise<void> = Promise.resolve();
  #reloadQueued = false;
  #closed = false;

  /** Prepares the layers (static ones parsed once); throws on an invalid static layer. */
  constructor(config: LayeredRuntimeConfig | undefined, readonly opts: RuntimeLoaderOptions) {
    this.#publish = opts.publish;
    const s = opts.stats.scope("runtime");
    this.#stats = {
      load_error: s.counter("load_error"),
      load_success: s.counter("load_success"),
      override_dir_exists: s.counter("override_dir_exists"),
      override_dir_not_exists: s.counter("override_dir_not_exists"),
      deprecated_feature_use: s.counter("deprecated_feature_use"),
      admin_overrides_active: s.gauge("admin_overrides_active", "never_import"),
      deprecated_feature_seen_since_process_start: s.gauge(
        "deprecated_feature_seen_since_process_start",
        "never_import",
      ),
      num_keys: s.gauge("num_keys", "never_import"),
      num_layers: s.gauge("num_layers", "never_import"),
    };
    this.#layers = effectiveLayers(config).map((l): Layer => {
      if (l.static_layer !== undefined) {
        return { kind: "static", name: l.name, values: staticLayerValues(l.static_layer) };
      }
      if (l.disk_layer !== undefined) {
        const d = l.disk_layer;
        const root = absolute(d.symlink_root);
        this.#roots.add(root);
        let path = `${d.symlink_root}/${d.subdirectory}`;
        if (d.append_service_cluster) path += `/${opts.serviceCluster}`;
        return { kind: "disk", name: l.name, path };
      }
      return { kind: "admin", layer: new AdminLayer(l.name) };
    });
    this.#admin = this.#layers.find((l) => l.kind === "admin")?.layer;
  }

  /**
   * Watches every disk layer's symlink root (throws, as Envoy fails to start, when its directory cannot be
   * watched), then loads and publishes the first snapshot.
   */
  async start(): Promise<void> {
    const dirs = new Map<string, string>();
    for (const root of this.#roots) dirs.set(parentOf(root), root);
    for (const [dir, root] of dirs) {
      try {
        if (!Deno.statSync(dir).isDirectory) throw new Error("Not a directory");
        this.#watchers.push(Deno.watchFs(dir, { recursive: false }));
      } catch (e) {
        this.close();
        const why = e instanceof Deno.errors.NotFound ? "No such file or directory" : (e as Error).message;
        // Envoy's words when its inotify watch cannot be added
        throw new Error(`Runtime: unable to add filesystem watch for file ${root}: ${why}`);
      }
    }
    for (const w of this.#watchers) void this.#watch(w);
    await this.#load();
  }

  async #watch(w: Deno.FsWatcher): Promise<void> {
    try {
      for await (const ev of w) {
        if (ev.paths.some((p) => this.#roots.has(p))) this.#queueReload();
      }
    } catch (e) {
      if (!this.#closed) log.warn(`runtime watch failed: ${(e as Error).message}`);
    }
  }

  /** One reload for however many events a swap produced before it ran. */
  #queueReload(): void {
    if (this.#reloadQueued || this.#closed) return;
    this.#reloadQueued = true;
    this.#chain = this.#chain.then(() => {
      this.#reloadQueued = false;
      if (this.#closed) return;
      log.debug("runtime: symlink root changed, reloading");
      return this.#loadNow();
    }).catch(() => {});
  }

  /** Builds a snapshot and publishes it, queued behind any load in progress. */
  #load(): Promise<void> {
    const run = this.#chain.then(() => this.#loadNow());
    this.#chain = run.catch(() => {});
    return run;
  }

  async #loadNow(): Promise<void> {
    const s = this.#createSnapshot();
    this.#snapshot = s;
    try {
      await this.#publish(s);
    } catch (e) {
      log.warn(`runtime snapshot ${s.version} not published everywhere: ${(e as Error).message}`);
    }
  }

  #createSnapshot(): RuntimeSnapshot {
    const layers: LayerValues[] = [];
    let disk = 0, errors = 0;
    for (const l of this.#layers) {
      if (l.kind === "static") layers.push({ name: l.name, values: l.values });
      else if (l.kind === "admin") layers.push({ name: l.layer.name, values: new Map(l.layer.values) });
      else {
        if (!directoryExists(l.path)) continue;
        try {
          layers.push({ name: l.name, values: diskLayerValues(l.path) });
          disk++;
        } catch (e) {
          errors++;
          log.debug(`error loading runtime values for layer ${l.name} from disk: ${(e as Error).message}`);
        }
      }
    }
    const st = this.#stats;
    st.num_layers.set(layers.length);
    (errors === 0 ? st.load_success : st.load_error).inc();
    // Envoy's code counts override_dir_exists only when more than one disk layer loaded
    (disk > 1 ? st.override_dir_exists : st.override_dir_not_exists).inc();
    const s = new RuntimeSnapshot(layers, ++this.#version);
    st.num_keys.set(s.size);
    return s;
  }

  /** The current snapshot (layers included, for /runtime). */
  get snapshot(): RuntimeSnapshot {
    return this.#snapshot;
  }

  /** True when an admin layer takes /runtime_modify overrides. */
  get hasAdminLayer(): boolean {
    return this.#admin !== undefined;
  }

  /**
   * `/runtime_modify`: sets (or, with an empty value, removes) admin overrides and publishes the new snapshot;
   * resolves once every event loop has it. Throws NoAdminLayerError without an admin layer.
   */
  mergeValues(params: Iterable<[string, string]>): Promise<void> {
    const admin = this.#admin;
    if (admin === undefined) return Promise.reject(new NoAdminLayerError());
    admin.merge(params);
    this.#stats.admin_overrides_active.set(admin.values.size > 0 ? 1 : 0);
    return this.#load();
  }

  /** Stops the watches. */
  close(): void {
    this.#closed = true;
    for (const w of this.#watchers) {
      try {
        w.close();
      } catch { /* already closed */ }
    }
    this.#watchers = [];
  }
}

function directoryExists(path: string): boolean {
  try {
    return Deno.statSync(path).isDirectory;
  } catch {
    return false;
  }
}
