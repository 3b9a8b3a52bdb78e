/**
 * `ControlPlane`: the management server's core, transport-free. It reads the inputs (manifests, defaults,
 * edge), keeps the last good version of each file that turns bad, builds every node's resources, installs
 * them in the SnapshotCache (which the xDS servers read), reads the defaults' secret files, and keeps central
 * health checking's targets (every endpoint of every service whose manifest has a health check) in step with
 * the registry. Inputs are re-read when a file's size or modification time changes (polled), or on `reload()`.
 */
import { Logger } from "../common/log.ts";
import type { ConfigError } from "../config/errors.ts";
import { formatConfigError } from "../config/errors.ts";
import type { HostRecord } from "../discovery/types.ts";
import type { Counter, Gauge, Histogram, Scope } from "../stats/store.ts";
import { build, durationText, type Json } from "./builder.ts";
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
  readonly #onHosts: () => void;
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
    this.#onHosts = () => this.#refreshTargets();
    opts.endpoints.changeListeners.add(this.#onHosts);
  }

  /** Central health checking: its verdicts become endpoint health, and it checks the endpoints we name. */
  attachHds(hds: HdsServer): void {
    this.#hds = hds;
    hds.healthListeners.add((services) => this.cache.endpointsChanged(services));
    void this.#refreshTargets();
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
    this.endpoints.changeListeners.delete(this.#onHosts);
    await this.#reloading;
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
    if (changed.size > 0) {
      log.info(`build: ${b.nodes.size} node clusters, changed: ${[...changed].join(", ")}`);
    }
    await this.#refreshTargets();
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

  /** Recomputes HDS targets from the manifests with a health check and their hosts. */
  async #refreshTargets(): Promise<void> {
    const set = this.inputs;
    const d = set?.defaults?.value;
    if (!set || !d || !this.#hds) return;
    const targets: HdsTarget[] = [];
    for (const [name, { value: m }] of [...set.manifests].sort((a, b) => a[0] < b[0] ? -1 : 1)) {
      if (!m.health_check) continue;
      let hosts: readonly HostRecord[];
      try {
        hosts = await this.endpoints.hosts(name);
      } catch {
        hosts = this.#targets.find((t) => t.service === name)?.endpoints.map((e) => ({
          service: name,
          ip_address: e.address,
          port: e.port,
          revision: "",
          service_repo_name: "",
          last_check_in: 0,
          tags: e.zone ? { az: e.zone } : {},
        })) ?? [];
      }
      const hc = m.health_check;
      const dh = d.health_check;
      targets.push({
        service: name,
        endpoints: hosts.map((h) => ({
          address: h.ip_address,
          port: h.port,
          ...(h.tags.az ? { zone: h.tags.az } : {}),
        })),
        healthCheck: {
          timeout: durationText(hc.timeout ?? dh.timeout ?? 1000),
          interval: durationText(hc.interval ?? dh.interval ?? 10_000),
          unhealthy_threshold: hc.unhealthy_threshold ?? dh.unhealthy_threshold ?? 2,
          healthy_threshold: hc.healthy_threshold ?? dh.healthy_threshold ?? 1,
          http_health_check: { path: hc.path },
        },
      });
    }
    if (JSON.stringify(targets) === JSON.stringify(this.#targets)) return;
    this.#targets = targets;
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
