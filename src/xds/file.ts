/**
 * Filesystem xDS (path_config_source / path): a DiscoveryResponse file (YAML or JSON) read at start and again
 * whenever a file is moved into place (Envoy watches for moves, not in-place edits; with watched_directory any
 * move into that directory reloads). A bad file is rejected (logged, `update_rejected`), the last good stays.
 */
import { parse as parseYaml } from "yaml";
import type { Clock, TimerHandle } from "../common/clock.ts";
import { errorText, type Subscription } from "./subscription.ts";
import type { XdsTransport } from "./types.ts";

/** Options of a FileTransport. */
export interface FileTransportOptions {
  /** The DiscoveryResponse file. */
  path: string;
  /** Reload on any move into this directory (watched_directory.path) rather than onto `path` only. */
  watchedDirectory?: string;
  /** Time source for coalescing bursts of events. */
  clock: Clock;
  /** Delay that coalesces a burst of watcher events into one reload, ms (default 10). */
  settleMs?: number;
}

function dirname(p: string): string {
  const i = p.lastIndexOf("/");
  return i < 0 ? "." : i === 0 ? "/" : p.slice(0, i);
}

function absolute(p: string): string {
  return p.startsWith("/") ? p : `${Deno.cwd()}/${p}`;
}

/** Watches one DiscoveryResponse file for one subscription; see the file comment. */
export class FileTransport implements XdsTransport {
  #sub: Subscription;
  #opts: FileTransportOptions;
  #path: string;
  #watcher: Deno.FsWatcher | undefined;
  #watching: Promise<void> | undefined;
  #timer: TimerHandle | undefined;
  #loading: Promise<void> | undefined;
  #dirty = false;
  #closed = false;

  /** Makes the watcher for `subscription`; nothing happens until `start()`. */
  constructor(subscription: Subscription, opts: FileTransportOptions) {
    this.#sub = subscription;
    this.#opts = opts;
    this.#path = absolute(opts.path);
  }

  /** Starts watching, then loads the file once. */
  start(): void {
    if (this.#closed || this.#watcher) return;
    this.#sub.start();
    const dir = absolute(this.#opts.watchedDirectory ?? dirname(this.#path));
    try {
      this.#watcher = Deno.watchFs(dir, { recursive: false });
      this.#watching = this.#watch(this.#watcher);
    } catch (e) {
      this.#sub.handleTransportFailure(`cannot watch ${dir}: ${errorText(e)}`);
    }
    this.requestNow();
  }

  /** Reloads the file soon (coalesced with other events). */
  requestNow(): void {
    if (this.#closed) return;
    if (this.#timer !== undefined) this.#opts.clock.clearTimer(this.#timer);
    this.#timer = this.#opts.clock.setTimer(() => {
      this.#timer = undefined;
      this.#reload();
    }, this.#opts.settleMs ?? 10);
  }

  /** Stops watching; resolves when no watcher, timer or read is left. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer !== undefined) this.#opts.clock.clearTimer(this.#timer);
    this.#timer = undefined;
    this.#sub.close();
    try {
      this.#watcher?.close();
    } catch { /* already closed */ }
    await this.#watching;
    await this.#loading;
  }

  async #watch(w: Deno.FsWatcher): Promise<void> {
    try {
      for await (const ev of w) {
        if (this.#closed) break;
        if (this.#relevant(ev)) this.requestNow();
      }
    } catch (e) {
      if (!this.#closed) this.#sub.handleTransportFailure(`watch failed: ${errorText(e)}`);
    }
  }

  /** A move (or create, as some systems report a move) onto the file, or into the watched directory. */
  #relevant(ev: Deno.FsEvent): boolean {
    if (ev.kind !== "rename" && ev.kind !== "create") return false;
    if (this.#opts.watchedDirectory !== undefined) return true;
    return ev.paths.some((p) => p === this.#path);
  }

  #reload(): void {
    if (this.#loading) {
      this.#dirty = true;
      return;
    }
    this.#loading = this.#loadOnce().finally(() => {
      this.#loading = undefined;
      if (this.#dirty && !this.#closed) {
        this.#dirty = false;
        this.#reload();
      }
    });
  }

  async #loadOnce(): Promise<void> {
    const sub = this.#sub;
    let text: string;
    try {
      const info = await Deno.stat(this.#path);
      if (info.size > sub.maxResponseBytes) return void await sub.handleOversize(info.size);
      text = await Deno.readTextFile(this.#path);
    } catch (e) {
      sub.handleTransportFailure(`cannot read ${this.#path}: ${errorText(e)}`);
      return;
    }
    if (this.#closed) return;
    const json = /\.json$/i.test(this.#path);
    await sub.handleResponseText(text, json ? JSON.parse : (t) => parseYaml(t));
  }
}
