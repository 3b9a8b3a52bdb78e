/**
 * `ControlPlane`: the management server's core, transport-free. It reads the inputs (manifests, defaults,
 * edge), keeps the last good version of each file that turns bad, builds every node's resources, installs
 * them in the SnapshotCache (which the xDS servers read), reads the defaults' secret files, and keeps central
 * health checking's targets (every endpoint of every service whose manifest has a health check) in step with
 * the registry. Inputs are re-read when a file's size or modification time changes (polled), or on `reload()`.
 */
import { CompactionScheduler } from "../common/heap.ts";
import { Logger } from "../common/log.ts";
import type { ConfigError } from "../config/errors.ts";
import { formatConfigError } from "../config/errors.ts";
import type { HostRecord } from "../discovery/types.ts";
import type { Counter, Gauge, Histogram, Scope } from "../stats/store.ts";
import { build, healthCheckJson, type Json } from "./builder.ts";
import type { EndpointSource } from "./endpoints.ts";
import type { HdsServer, HdsTarget } from "./hds.ts";
import { type InputPaths, type InputSet, loadInputs, manifestFiles } from "./inputs.ts";
import { SnapshotCache } from "./snapshot.ts";

const log = new Logger("control-plane");

/** Options of a ControlPlane. */
export interface ControlPlaneOptions {
  paths: InputPaths;
  endpoints: EndpointSource;
  stats: Scope;
  /** How often input files are checked for changes (default 1000 ms; 0: only `reload()`). */
  watchIntervalMs?: number;
}

/** See the file comment. */
export class ControlPlane {
  readonly paths: InputPaths;
  readonly endpoints: EndpointSource;
  readonly cache: SnapshotCache;
  /** The inputs in force (last good of each file) and the errors of the latest read. */
  inputs: InputSet | undefined;
  /** Errors of the latest read, formatted `file:line:col: path: message`. */
  errors: string[] = [];
  #hds: HdsServer | undefined;
  readonly #watchMs: number;
  #fingerprint = "";
  #timer: ReturnType<typeof setTimeout> | undefined;
  #reloading: Promise<void> | undefined;
  #again = false;
  #closed = false;
  #targets: HdsTarget[] = [];
  /** A rebuild leaves tens of MB of garbage: compact once reloads go quiet (as the proxy does after xDS). */
  readonly #compaction = new CompactionScheduler();
  /** HDS target of each service, with its JSON (to tell a change). */
  readonly #targetOf = new Map<string, { key: string; target: HdsTarget }>();
  /** Services whose hosts changed since targets were last computed; `#targetsAll`: every one. */
  readonly #targetsDirty = new Set<string>();
  #targetsAll = false;
  #targetTimer: ReturnType<typeof setTimeout> | undefined;
  #targeting: Promise<void> = Promise.resolve();
  readonly #onHosts: (service: string | null) => void;
  readonly #c: {
    builds: Counter;
    rejected: Counter;
    inputErrors: Gauge;
    nodes: Gauge;
    buildMs: Histogram;
  };

  constructor(opts: ControlPlaneOptions) {
    this.paths = opts.paths;
    this.endpoints = opts.endpoints;
    this.#watchMs = opts.watchIntervalMs ?? 1000;
    this.cache = new SnapshotCache(opts.endpoints, {
      health: (s, a, p) => this.#hds?.health(s, a, p),
    });
    const s = opts.stats;
    this.#c = {
      builds: s.counter("builds"),
      rejected: s.counter("inputs_rejected"),
      inputErrors: s.gauge("input_errors"),
      nodes: s.gauge("nodes"),
      buildMs: s.histogram("build_ms"),
    };
    this.#onHosts = (service) => this.#scheduleTargets(service);
    opts.endpoints.changeListeners.add(this.#onHosts);
  }

  /** Central health checking: its verdicts become endpoint health, and it checks the endpoints we name. */
  attachHds(hds: HdsServer): void {
    this.#hds = hds;
    hds.healthListeners.add((services) => this.cache.endpointsChanged(services));
    this.#scheduleTargets(null);
  }

  /** HDS's current targets. */
  hdsTargets(): HdsTarget[] {
    return this.#targets;
  }

  /** Reads the inputs and builds; then watches them. Resolves false when the first read had errors. */
  async start(): Promise<boolean> {
    await this.reload();
    this.#arm();
    return this.errors.length === 0;
  }

  /** Re-reads every input now (coalesced with a reload in progress). */
  reload(): Promise<void> {
    if (this.#reloading) {
      this.#again = true;
      return this.#reloading;
    }
    this.#reloading = this.#reload().finally(() => {
      this.#reloading = undefined;
      if (this.#again && !this.#closed) {
        this.#again = false;
        void this.reload();
      }
    });
    return this.#reloading;
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    clearTimeout(this.#targetTimer);
    this.#compaction.close();
    this.endpoints.changeListeners.delete(this.#onHosts);
    await this.#reloading;
    await this.#targeting;
    await this.cache.close();
  }

  /** The registered hosts of every known service (undefined when the registry cannot say). */
  async registered(): Promise<Map<string, readonly HostRecord[]> | undefined> {
    try {
      const names = new Set([...await this.endpoints.services(), ...this.cache.services()]);
      const out = new Map<string, readonly HostRecord[]>();
      await Promise.all([...names].map(async (n) => out.set(n, await this.endpoints.hosts(n))));
      return out;
    } catch {
      return undefined;
    }
  }

  async #reload(): Promise<void> {
    const t0 = performance.now();
    this.#fingerprint = await this.#stat();
    const set = await loadInputs(this.paths, this.inputs);
    this.errors = set.errors.map((e: ConfigError) => formatConfigError(e));
    this.#c.inputErrors.set(set.errors.length);
    if (set.errors.length > 0) {
      this.#c.rejected.inc();
      for (const e of this.errors) log.warn(`rejected input: ${e}`);
      if (set.kept.size > 0) log.warn(`serving the last good version of: ${[...set.kept].join(", ")}`);
    }
    if (!set.defaults) {
      log.error("no good defaults file yet: nothing to serve");
      this.inputs = set;
      return;
    }
    this.inputs = set;
    const b = build({
      defaults: set.defaults.value,
      manifests: new Map([...set.manifests].map(([k, v]) => [k, v.value])),
      edge: set.edge?.value,
    });
    const changed = await this.cache.setBuild(b);
    await this.#loadSecrets();
    this.#c.builds.inc();
    this.#c.nodes.set(b.nodes.size);
    this.#c.buildMs.record(performance.now() - t0);
    this.#compaction.note();
    if (changed.size > 0) {
      log.info(`build: ${b.nodes.size} node clusters, changed: ${[...changed].join(", ")}`);
    }
    this.#scheduleTargets(null);
  }

  /** Reads the secrets' files; one that cannot be read keeps its last content. */
  async #loadSecrets(): Promise<void> {
    const d = this.inputs?.defaults?.value;
    if (!d) return;
    const out = new Map<string, Json>();
    for (const s of d.secrets) {
      try {
        const read = (f: string) => Deno.readTextFile(f).then((inline_string) => ({ inline_string }));
        const secret: Json = { name: s.name };
        if (s.certificate_chain !== undefined && s.private_key !== undefined) {
          secret.tls_certificate = {
            certificate_chain: await read(s.certificate_chain),
            private_key: await read(s.private_key),
          };
        }
        if (s.trusted_ca !== undefined) secret.validation_context = { trusted_ca: await read(s.trusted_ca) };
        out.set(s.name, secret);
      } catch (e) {
        log.warn(`secret ${s.name}: ${(e as Error).message}; keeping the last content`);
        return;
      }
    }
    this.cache.setSecrets(out);
  }

  /**
   * Recomputes HDS targets soon (a window of 100 ms gathers a burst of check-ins): those of `service`, or of
   * every service (null: a new build, a new HDS server).
   */
  #scheduleTargets(service: string | null): void {
    if (this.#closed || !this.#hds) return;
    if (service === null) this.#targetsAll = true;
    else this.#targetsDirty.add(service);
    if (this.#targetTimer !== undefined) return;
    this.#targetTimer = setTimeout(() => {
      this.#targetTimer = undefined;
      this.#targeting = this.#targeting.then(() => this.#refreshTargets()).catch((e) =>
        log.warn(`HDS targets: ${(e as Error).message}`)
      );
    }, 100);
  }

  /** Recomputes the HDS targets of the services marked: manifests with a health check, and their hosts. */
  async #refreshTargets(): Promise<void> {
    const set = this.inputs;
    const d = set?.defaults?.value;
    if (!set || !d || !this.#hds || this.#closed) return;
    const all = this.#targetsAll;
    const dirty = new Set(this.#targetsDirty);
    this.#targetsAll = false;
    this.#targetsDirty.clear();
    const names = [...set.manifests.keys()].filter((n) => set.manifests.get(n)!.value.health_check).sort();
    let changed = false;
    for (const n of [...this.#targetOf.keys()]) {
      if (!names.includes(n)) changed = this.#targetOf.delete(n) || changed;
    }
    for (const name of names) {
      if (!all && !dirty.has(name) && this.#targetOf.has(name)) continue;
      let hosts: readonly HostRecord[];
      try {
        hosts = await this.endpoints.hosts(name);
      } catch {
        continue; // the registry cannot say: keep what the checkers have
      }
      const target: HdsTarget = {
        service: name,
        endpoints: hosts.map((h) => ({
          address: h.ip_address,
          port: h.port,
          ...(h.tags.az ? { zone: h.tags.az } : {}),
        })),
        healthCheck: healthCheckJson(set.manifests.get(name)!.value.health_check!, d),
      };
      const key = JSON.stringify(target);
      if (this.#targetOf.get(name)?.key === key) continue;
      this.#targetOf.set(name, { key, target });
      changed = true;
    }
    if (!changed) return;
    this.#targets = names.flatMap((n) => this.#targetOf.get(n)?.target ?? []);
    this.#hds.targetsChanged();
  }

  /** Sizes and modification times of every input file. */
  async #stat(): Promise<string> {
    const files = [this.paths.defaults, ...(this.paths.edge ? [this.paths.edge] : [])];
    try {
      files.push(...await manifestFiles(this.paths.manifests));
    } catch {
      files.push(this.paths.manifests);
    }
    for (const s of this.inputs?.defaults?.value.secrets ?? []) {
      for (const f of [s.certificate_chain, s.private_key, s.trusted_ca]) if (f) files.push(f);
    }
    const parts = await Promise.all(files.map(async (f) => {
      try {
        const st = await Deno.stat(f);
        return `${f}:${st.size}:${st.mtime?.getTime() ?? 0}`;
      } catch {
        return `${f}:-`;
      }
    }));
    return parts.join("\n");
  }

  #arm(): void {
    if (this.#watchMs <= 0 || this.#closed) return;
    this.#timer = setTimeout(async () => {
      this.#timer = undefined;
      try {
        if (await this.#stat() !== this.#fingerprint && !this.#closed) await this.reload();
      } catch (e) {
        log.warn(`input watch: ${(e as Error).message}`);
      }
      this.#arm();
    }, this.#watchMs);
  }
}
