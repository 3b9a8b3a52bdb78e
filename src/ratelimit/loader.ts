/**
 * Loads the limits path into the service and reloads it when a file changes (polled: mtime, size and the
 * file list). A bad new set is rejected whole: the old limits keep serving, the error is logged and counted
 * (`ratelimit.service.config_load_error`); a good one counts `config_load_success`.
 */
import { Logger } from "../common/log.ts";
import { formatConfigError } from "../config/errors.ts";
import type { Counter } from "../stats/store.ts";
import { LimitsConfig } from "./limits.ts";
import { listLimitsFiles, loadLimitsPath } from "./limits_file.ts";
import type { RateLimitService } from "./service.ts";

const log = new Logger("ratelimit.config");

/** Options of LimitsLoader. */
export interface LimitsLoaderOptions {
  /** Poll interval (default 1000 ms; 0 disables watching). */
  watchIntervalMs?: number;
}

/** Keeps `service`'s limits in step with the files under `path`. */
export class LimitsLoader {
  readonly path: string;
  /** Errors of the last failed load, rendered `file:line:col: path: message` ([] after a good load). */
  lastErrors: string[] = [];
  readonly #service: RateLimitService;
  readonly #interval: number;
  readonly #ok: Counter;
  readonly #err: Counter;
  #signature = "";
  #timer: ReturnType<typeof setTimeout> | undefined;
  #stopped = false;
  #polling: Promise<void> | undefined;

  /** A loader for `path` feeding `service`. */
  constructor(path: string, service: RateLimitService, opts: LimitsLoaderOptions = {}) {
    this.path = path;
    this.#service = service;
    this.#interval = opts.watchIntervalMs ?? 1000;
    this.#ok = service.stats.counter("ratelimit.service.config_load_success");
    this.#err = service.stats.counter("ratelimit.service.config_load_error");
  }

  /** Loads now; true when the new limits were swapped in. */
  async load(): Promise<boolean> {
    this.#signature = await this.#currentSignature();
    const r = await loadLimitsPath(this.path);
    if (!r.ok) {
      this.#err.inc();
      this.lastErrors = r.errors.map(formatConfigError);
      const kept = this.#service.config ? "keeping the previous limits" : "no limits loaded";
      log.error(`Rejected rate limit config (${kept}):\n  ${this.lastErrors.join("\n  ")}`);
      return false;
    }
    const config = new LimitsConfig(r.files, {
      stats: this.#service.stats,
      nearLimitRatio: this.#service.nearLimitRatio,
    });
    this.#service.setConfig(config);
    this.#ok.inc();
    this.lastErrors = [];
    log.info(
      `Loaded ${config.rules.length} rate limits for ${config.domains().length} domain(s) from ${this.path}`,
    );
    return true;
  }

  /** Starts polling for changes. */
  start(): void {
    if (this.#interval > 0 && !this.#stopped) this.#schedule();
  }

  /** Stops polling (waits for a poll in progress). */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#polling;
  }

  #schedule(): void {
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#polling = this.#poll();
    }, this.#interval);
  }

  async #poll(): Promise<void> {
    try {
      const sig = await this.#currentSignature();
      if (sig !== this.#signature) await this.load();
    } catch (e) {
      log.error(`Watching ${this.path} failed: ${(e as Error).message}`);
    }
    if (!this.#stopped) this.#schedule();
  }

  async #currentSignature(): Promise<string> {
    try {
      const names = await listLimitsFiles(this.path);
      const parts: string[] = [];
      for (const n of names) {
        try {
          const s = await Deno.stat(n);
          parts.push(`${n}:${s.mtime?.getTime() ?? 0}:${s.size}:${s.ino ?? 0}`);
        } catch {
          parts.push(`${n}:gone`);
        }
      }
      return parts.join("|");
    } catch {
      return "missing";
    }
  }
}
