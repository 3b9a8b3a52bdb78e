/**
 * The live dashboard: `GET /dashboard` (one self-contained page, dashboard_assets.ts) and `GET
 * /dashboard/events`, a server-sent events stream of one frame a second. Frames (dashboard_frame.ts) are rates
 * and interval quantiles computed from two successive merged stats snapshots (`Server.stats()`), sampled on the
 * admin's thread by a timer that runs only while some client is connected: the data path pays nothing for it.
 */
import { type Clock, systemClock } from "../common/clock.ts";
import type { StatsSnapshot } from "../stats/store.ts";
import { DASHBOARD_HTML } from "./dashboard_assets.ts";
import { computeFrame, type DashboardFrame, type DashboardListener } from "./dashboard_frame.ts";
import type { ObservedPeaks } from "./suggest.ts";
import type { AdminEndpoint, ClusterStatus } from "./types.ts";

export { computeFrame } from "./dashboard_frame.ts";
export type { ClusterRow, DashboardFrame, DashboardListener, ListenerRow } from "./dashboard_frame.ts";

/** What the dashboard reads from the server. */
export interface DashboardSource {
  /** Stats merged across workers. */
  stats(): Promise<StatsSnapshot>;
  /** Clusters with their hosts' health. */
  clusters(): Promise<ClusterStatus[]>;
  /** The listeners serving now. */
  listeners(): Promise<DashboardListener[]>;
}

/** Gets each frame; null when the sampler closes (the stream ends). */
type Subscriber = (frame: DashboardFrame | null) => void;

/** Samples the stats once a second while anyone listens, and hands each frame to every subscriber. */
export class DashboardSampler {
  readonly #src: DashboardSource;
  readonly #clock: Clock;
  readonly #intervalMs: number;
  readonly #subs = new Set<Subscriber>();
  #timer: ReturnType<typeof setInterval> | undefined;
  #prev: { snap: StatsSnapshot; mono: number } | undefined;
  #busy = false;
  /** The last frame (sent at once to a new subscriber). */
  last: DashboardFrame | undefined;
  #peaks: ObservedPeaks = { sampledSeconds: 0, clusters: new Map() };

  constructor(src: DashboardSource, opts: { clock?: Clock; intervalMs?: number } = {}) {
    this.#src = src;
    this.#clock = opts.clock ?? systemClock;
    this.#intervalMs = opts.intervalMs ?? 1000;
  }

  /** Number of connected clients. */
  get subscribers(): number {
    return this.#subs.size;
  }

  /** True while the timer runs. */
  get running(): boolean {
    return this.#timer !== undefined;
  }

  /** Adds a client; the first one starts the timer. Returns the function that removes it. */
  subscribe(fn: Subscriber): () => void {
    this.#subs.add(fn);
    if (this.last) fn(this.last);
    if (this.#timer === undefined) {
      this.#prev = undefined;
      void this.tick();
      this.#timer = setInterval(() => void this.tick(), this.#intervalMs);
    }
    return () => {
      this.#subs.delete(fn);
      if (this.#subs.size === 0 && this.#timer !== undefined) {
        clearInterval(this.#timer);
        this.#timer = undefined;
        this.#prev = undefined;
        this.last = undefined;
      }
    };
  }

  /** Takes one sample; emits a frame when there is a previous one (called by the timer; tests call it). */
  async tick(): Promise<void> {
    if (this.#busy) return; // a slow merge never stacks samples
    this.#busy = true;
    try {
      const [snap, clusters, listeners] = await Promise.all([
        this.#src.stats(),
        this.#src.clusters(),
        this.#src.listeners(),
      ]);
      const mono = this.#clock.monotonic();
      const prev = this.#prev;
      this.#prev = { snap, mono };
      if (!prev || this.#subs.size === 0) return;
      const frame = computeFrame(
        snap,
        prev.snap,
        (mono - prev.mono) / 1000,
        listeners,
        clusters,
        this.#clock.now(),
      );
      this.last = frame;
      this.#notePeaks(frame);
      for (const s of this.#subs) s(frame);
    } catch {
      // the server is stopping or a worker did not answer: the next tick tries again
    } finally {
      this.#busy = false;
    }
  }

  /** Peak concurrency and rate per cluster over every frame so far (/debug/suggest); undefined before any. */
  peaks(): ObservedPeaks | undefined {
    return this.#peaks.sampledSeconds > 0 ? this.#peaks : undefined;
  }

  #notePeaks(f: DashboardFrame): void {
    this.#peaks.sampledSeconds = Math.round((this.#peaks.sampledSeconds + f.interval) * 1000) / 1000;
    for (const c of f.clusters) {
      const p = this.#peaks.clusters.get(c.name);
      if (!p) this.#peaks.clusters.set(c.name, { rqActive: c.active, cxActive: c.connections, rps: c.rps });
      else {
        p.rqActive = Math.max(p.rqActive, c.active);
        p.cxActive = Math.max(p.cxActive, c.connections);
        p.rps = Math.max(p.rps, c.rps);
      }
    }
  }

  /** Stops the timer and drops every client (admin close). */
  close(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    const subs = [...this.#subs];
    this.#subs.clear();
    for (const s of subs) s(null);
  }
}

const encoder = new TextEncoder();

/** The SSE response of one client: a `frame` event per sample, a comment every 15 s keeps proxies open. */
function eventStream(sampler: DashboardSampler): Response {
  let unsubscribe: (() => void) | undefined;
  let keepAlive: ReturnType<typeof setInterval> | undefined;
  const stop = () => {
    unsubscribe?.();
    unsubscribe = undefined;
    if (keepAlive !== undefined) clearInterval(keepAlive);
    keepAlive = undefined;
  };
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(encoder.encode("retry: 2000\n\n"));
      unsubscribe = sampler.subscribe((f) => {
        if (f === null) {
          stop();
          try {
            controller.close();
          } catch { /* already closed */ }
          return;
        }
        try {
          controller.enqueue(encoder.encode(`event: frame\ndata: ${JSON.stringify(f)}\n\n`));
        } catch {
          stop();
        }
      });
      keepAlive = setInterval(() => {
        try {
          controller.enqueue(encoder.encode(": keep-alive\n\n"));
        } catch {
          stop();
        }
      }, 15_000);
    },
    // the client went away (Deno.serve cancels the body); the sampler's close ends the stream on admin close
    cancel() {
      stop();
    },
  });
  return new Response(body, {
    headers: {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache",
      "x-accel-buffering": "no",
    },
  });
}

/** `/dashboard` and `/dashboard/events` over `sampler`. */
export function dashboardEndpoints(sampler: DashboardSampler): AdminEndpoint[] {
  return [
    {
      path: "/dashboard",
      method: "GET",
      help: "live dashboard: per listener and cluster rates, latency, errors, connections and health",
      handler: () =>
        new Response(DASHBOARD_HTML, { headers: { "content-type": "text/html; charset=utf-8" } }),
    },
    {
      path: "/dashboard/events",
      method: "GET",
      help: "the dashboard's server-sent events: one JSON frame a second while connected",
      handler: () => eventStream(sampler),
    },
  ];
}
