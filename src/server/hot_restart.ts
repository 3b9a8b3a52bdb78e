/**
 * Hot restart (Envoy's model, `--restart-epoch`/`--base-id`): the process of epoch N+1 loads and validates its
 * config, asks epoch N to close its admin listener, binds every listener beside N's (SO_REUSEPORT), finishes its
 * initial discovery and health checks, then tells N to drain: N stops accepting, drains its connections and
 * exits, and its counters and gauges move to N+1.
 *
 * Envoy hands the listening sockets themselves to the new process (SCM_RIGHTS); Deno can neither pass nor adopt
 * a descriptor, so both processes listen on the same addresses through SO_REUSEPORT and the old one closes its
 * sockets at the hand-over. Connections the kernel had already queued on a closed socket are reset unless
 * `net.ipv4.tcp_migrate_req` is 1, which moves them to a socket of the same group: measured here, 64 of ~1,100
 * connections were reset at 0 and none at 1. nuncio sets it when it may (root) and warns when it cannot.
 *
 * The processes talk over a Unix domain socket per epoch, `<--socket-path>_<base id>_<epoch>`, one JSON
 * object per line: hello (protocol version, generation, start time), shutdown_admin, stats, drain; the old
 * process answers drain with "draining", then sends its last stats ("terminated") and exits.
 */
import { Logger } from "../common/log.ts";
import type { StatsSnapshot, StatsStore } from "../stats/store.ts";

const log = new Logger("main");

/** Two processes hand over only when their protocol versions match (`--hot-restart-version`). */
export const HOT_RESTART_VERSION = "nuncio.1";

/** The domain socket the process of `epoch` serves its successor on. */
export function socketPathOf(prefix: string, baseId: number, epoch: number): string {
  return `${prefix}_${baseId}_${epoch}`;
}

/** What the new process asks. */
export type ChildMessage =
  | { type: "hello"; version: string; epoch: number }
  | { type: "shutdown_admin" }
  | { type: "stats" }
  | { type: "drain" };

/** What the old process answers. */
export type ParentMessage =
  | { type: "hello"; version: string; epoch: number; generation: number; startedAt: number }
  | { type: "error"; message: string }
  | { type: "admin_closed" }
  | { type: "stats"; snapshot: StatsSnapshot }
  | { type: "draining" }
  | { type: "terminated"; snapshot: StatsSnapshot };

const encoder = new TextEncoder();

/** One JSON object per line over a stream connection. */
export class LineChannel<In, Out> {
  readonly #conn: Deno.Conn;
  readonly #decoder = new TextDecoder();
  #buffered = "";
  #closed = false;
  /** Sends go out one after the other (a large stats line takes several writes). */
  #writing: Promise<unknown> = Promise.resolve();

  constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }

  /** Sends one message; false when the peer is gone. */
  send(m: Out): Promise<boolean> {
    const bytes = encoder.encode(JSON.stringify(m) + "\n");
    const sent = this.#writing.then(async () => {
      if (this.#closed) return false;
      try {
        for (let off = 0; off < bytes.length;) off += await this.#conn.write(bytes.subarray(off));
        return true;
      } catch {
        return false;
      }
    });
    this.#writing = sent;
    return sent;
  }

  /** The next message, or undefined when the peer closed (or sent something that is not a message). */
  async receive(): Promise<In | undefined> {
    const buf = new Uint8Array(64 * 1024);
    for (;;) {
      const nl = this.#buffered.indexOf("\n");
      if (nl >= 0) {
        const line = this.#buffered.slice(0, nl);
        this.#buffered = this.#buffered.slice(nl + 1);
        try {
          return JSON.parse(line) as In;
        } catch {
          return undefined;
        }
      }
      if (this.#closed) return undefined;
      let n: number | null;
      try {
        n = await this.#conn.read(buf);
      } catch {
        n = null;
      }
      if (n === null) return undefined;
      this.#buffered += this.#decoder.decode(buf.subarray(0, n), { stream: true });
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#conn.close();
    } catch {
      // already closed
    }
  }
}

/** True when something answers on the domain socket at `path`. */
export async function socketLive(path: string): Promise<boolean> {
  try {
    const c = await Deno.connect({ transport: "unix", path });
    c.close();
    return true;
  } catch {
    return false;
  }
}

/**
 * Listens on this epoch's domain socket. A live socket there means another nuncio of the same base id and
 * epoch runs: an error naming --base-id, as Envoy's. A stale file (a process that died) is removed.
 */
export async function listenDomainSocket(
  path: string,
  mode: number,
  baseId: number,
): Promise<Deno.UnixListener> {
  if (await socketLive(path)) {
    throw new Error(
      `unable to bind domain socket ${path}: a nuncio with base id ${baseId} already runs this epoch (see --base-id, --use-dynamic-base-id)`,
    );
  }
  try {
    Deno.removeSync(path);
  } catch {
    // nothing there
  }
  const l = Deno.listen({ transport: "unix", path });
  Deno.chmodSync(path, mode);
  return l;
}

/** The lowest base id from `from` whose epoch-0 socket nothing serves (--use-dynamic-base-id). */
export async function dynamicBaseId(prefix: string, from = 0): Promise<number> {
  for (let id = from; id < from + 1000; id++) {
    if (!await socketLive(socketPathOf(prefix, id, 0))) return id;
  }
  throw new Error("no free base id among 1000 tried");
}

/** Makes connections queued on a closing SO_REUSEPORT socket move to another of its group; the state it leaves. */
export function enableRequestMigration(): "on" | "set" | string {
  const path = "/proc/sys/net/ipv4/tcp_migrate_req";
  try {
    if (Deno.readTextFileSync(path).trim() === "1") return "on";
    Deno.writeTextFileSync(path, "1");
    return "set";
  } catch (e) {
    return `net.ipv4.tcp_migrate_req is 0 and cannot be set (${
      (e as Error).message
    }): connections queued on the old process's sockets at the hand-over may be reset; set it to 1 (sysctl -w net.ipv4.tcp_migrate_req=1)`;
  }
}

/**
 * Adds the old process's counters and gauges to this one's while both run (Envoy's StatMerger): each counter
 * by what it grew since the last merge, accumulate gauges likewise; never_import gauges (server.*, membership,
 * health) stay this process's own. When the old process is gone its gauges' share is taken back out, since
 * what they counted (its connections) has ended.
 */
export class ParentStatsMerger {
  readonly #store: StatsStore;
  readonly #counters = new Map<string, number>();
  readonly #gauges = new Map<string, number>();

  constructor(store: StatsStore) {
    this.#store = store;
  }

  merge(s: StatsSnapshot): void {
    for (const k in s.counters) {
      const v = s.counters[k];
      const last = this.#counters.get(k) ?? 0;
      // a parent's /reset_counters moves its values down: count from there
      if (v > last) this.#store.counter(k).inc(v - last);
      this.#counters.set(k, v);
    }
    const never = new Set(s.neverImport ?? []);
    for (const k in s.gauges) {
      if (never.has(k) || k.startsWith("server.")) continue;
      const v = s.gauges[k];
      const last = this.#gauges.get(k) ?? 0;
      if (v !== last) this.#store.gauge(k).inc(v - last);
      this.#gauges.set(k, v);
    }
  }

  /** The old process exited: its gauges no longer count. */
  parentGone(): void {
    for (const [k, v] of this.#gauges) this.#store.gauge(k).dec(v);
    this.#gauges.clear();
  }
}

/** The new process's side: a connection to the previous epoch. */
export class ParentLink {
  readonly #channel: LineChannel<ParentMessage, ChildMessage>;
  readonly hello: Extract<ParentMessage, { type: "hello" }>;

  private constructor(channel: LineChannel<ParentMessage, ChildMessage>, hello: ParentLink["hello"]) {
    this.#channel = channel;
    this.hello = hello;
  }

  /**
   * Connects to epoch `epoch - 1`: undefined when nothing serves there (the old process is gone; this one
   * starts a new generation); throws when the old process speaks another hot-restart version.
   */
  static async connect(prefix: string, baseId: number, epoch: number): Promise<ParentLink | undefined> {
    const path = socketPathOf(prefix, baseId, epoch - 1);
    let conn: Deno.Conn;
    try {
      conn = await Deno.connect({ transport: "unix", path });
    } catch (e) {
      log.warn(
        `hot restart: no epoch ${epoch - 1} at ${path} (${(e as Error).message}); starting without a parent`,
      );
      return undefined;
    }
    const ch = new LineChannel<ParentMessage, ChildMessage>(conn);
    await ch.send({ type: "hello", version: HOT_RESTART_VERSION, epoch });
    const r = await ch.receive();
    if (r?.type !== "hello") {
      ch.close();
      throw new Error(
        `hot restart: epoch ${epoch - 1} refused the hand-over: ${
          r?.type === "error" ? r.message : "no answer"
        }`,
      );
    }
    return new ParentLink(ch, r);
  }

  async #ask<T extends ParentMessage["type"]>(
    m: ChildMessage,
    want: T,
  ): Promise<Extract<ParentMessage, { type: T }>> {
    if (!await this.#channel.send(m)) throw new Error("hot restart: the old process went away");
    const r = await this.#channel.receive();
    if (r?.type !== want) {
      throw new Error(`hot restart: the old process answered ${r?.type ?? "nothing"} to ${m.type}`);
    }
    return r as Extract<ParentMessage, { type: T }>;
  }

  /** Asks the old process to close its admin listener (so this one can bind the address). */
  async shutdownAdmin(): Promise<void> {
    await this.#ask({ type: "shutdown_admin" }, "admin_closed");
  }

  /** The old process's stats now. */
  async stats(): Promise<StatsSnapshot> {
    return (await this.#ask({ type: "stats" }, "stats")).snapshot;
  }

  /** Tells the old process to stop accepting and drain. */
  async drain(): Promise<void> {
    await this.#ask({ type: "drain" }, "draining");
  }

  /**
   * While the old process drains: asks for its stats every `everyMs` and hands each answer to `merge`, until
   * its last stats arrive (true) or it goes away without them (false). Closes the link.
   */
  async follow(merge: (s: StatsSnapshot) => void, everyMs: number): Promise<boolean> {
    const timer = setInterval(() => this.#channel.send({ type: "stats" }), everyMs);
    try {
      for (;;) {
        const r = await this.#channel.receive();
        if (r === undefined) return false;
        if (r.type === "stats") merge(r.snapshot);
        else if (r.type === "terminated") {
          merge(r.snapshot);
          return true;
        }
      }
    } finally {
      clearInterval(timer);
      this.close();
    }
  }

  close(): void {
    this.#channel.close();
  }
}

/** What the old process does when its successor asks. */
export interface ParentHooks {
  epoch: number;
  generation: number;
  startedAt: number;
  closeAdmin(): Promise<void>;
  /** The successor went away before the drain: serve admin again. */
  reopenAdmin(): Promise<void>;
  stats(): Promise<StatsSnapshot>;
  /** Stops accepting and drains; resolves to the last stats once this process is done serving. */
  drain(): Promise<StatsSnapshot>;
}

/**
 * The old process's side: serves its successor on this epoch's domain socket, one at a time. After a
 * drain it answers nothing else; `handedOver` resolves once the last stats went out.
 */
export class HotRestartServer {
  readonly #listener: Deno.UnixListener;
  readonly #path: string;
  readonly #hooks: ParentHooks;
  #busy = false;
  #closed = false;
  #resolveHandedOver!: () => void;
  /** Resolves when a successor took over and this process has drained and sent its last stats. */
  readonly handedOver = new Promise<void>((r) => this.#resolveHandedOver = r);

  constructor(listener: Deno.UnixListener, path: string, hooks: ParentHooks) {
    this.#listener = listener;
    this.#path = path;
    this.#hooks = hooks;
    this.#accept();
  }

  async #accept(): Promise<void> {
    for (;;) {
      let conn: Deno.Conn;
      try {
        conn = await this.#listener.accept();
      } catch {
        return;
      }
      const ch = new LineChannel<ChildMessage, ParentMessage>(conn);
      if (this.#busy) {
        await ch.send({ type: "error", message: "another process is already taking over" });
        ch.close();
        continue;
      }
      this.#busy = true;
      this.#serve(ch).finally(() => {
        ch.close();
        this.#busy = false;
      });
    }
  }

  async #serve(ch: LineChannel<ChildMessage, ParentMessage>): Promise<void> {
    const h = this.#hooks;
    let adminClosed = false;
    for (;;) {
      const m = await ch.receive();
      if (m === undefined) break;
      if (m.type === "hello") {
        if (m.version !== HOT_RESTART_VERSION || m.epoch !== h.epoch + 1) {
          await ch.send({
            type: "error",
            message:
              `epoch ${h.epoch} (hot restart version ${HOT_RESTART_VERSION}) cannot hand over to epoch ${m.epoch} (version ${m.version})`,
          });
          return;
        }
        log.info(`hot restart: epoch ${m.epoch} is starting`);
        await ch.send({
          type: "hello",
          version: HOT_RESTART_VERSION,
          epoch: h.epoch,
          generation: h.generation,
          startedAt: h.startedAt,
        });
      } else if (m.type === "shutdown_admin") {
        await h.closeAdmin();
        adminClosed = true;
        await ch.send({ type: "admin_closed" });
      } else if (m.type === "stats") {
        await ch.send({ type: "stats", snapshot: await h.stats() });
      } else if (m.type === "drain") {
        log.info(`hot restart: epoch ${h.epoch + 1} took over; draining`);
        // nobody takes over from a draining process: its socket goes now
        this.close();
        const done = h.drain();
        await ch.send({ type: "draining" });
        // stats requests are still answered while the drain runs
        this.#answerStatsUntil(ch, done);
        const last = await done;
        await ch.send({ type: "terminated", snapshot: last });
        this.#resolveHandedOver();
        return;
      }
    }
    // the successor went away before taking over: this process keeps serving, admin included
    if (adminClosed) {
      log.warn("hot restart: the new process went away before taking over; serving on");
      await h.reopenAdmin();
    }
  }

  async #answerStatsUntil(
    ch: LineChannel<ChildMessage, ParentMessage>,
    done: Promise<unknown>,
  ): Promise<void> {
    let over = false;
    done.then(() => over = true);
    while (!over) {
      const m = await Promise.race([ch.receive(), done.then(() => undefined)]);
      if (m === undefined || over) return;
      if (m.type === "stats") await ch.send({ type: "stats", snapshot: await this.#hooks.stats() });
    }
  }

  /** Stops serving successors and removes the socket file. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#listener.close();
    } catch {
      // already closed
    }
    try {
      Deno.removeSync(this.#path);
    } catch {
      // already gone
    }
  }
}
