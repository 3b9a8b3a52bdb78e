/**
 * REST-JSON xDS polling: `POST /v3/discovery:<type>` with the subscription's DiscoveryRequest to the management
 * cluster, every refresh_delay plus jitter; failures retry with jittered exponential back-off. Control path
 * only, so it uses `fetch` (its own HTTP client, closed with the transport).
 */
import type { Clock, TimerHandle } from "../common/clock.ts";
import type { Gauge, Scope } from "../stats/store.ts";
import { JitteredBackoff } from "./backoff.ts";
import { errorText, type Subscription } from "./subscription.ts";
import {
  type RandomSource,
  type ResolveCluster,
  restPath,
  type TypeUrl,
  type XdsNode,
  type XdsTransport,
} from "./types.ts";

/** Options of a RestTransport. */
export interface RestTransportOptions {
  /** The management server's cluster (api_config_source.cluster_names[0]). */
  clusterName: string;
  /** Resolves the cluster to an address now (wired to the cluster manager). */
  resolveCluster: ResolveCluster;
  /** The node sent in every request. */
  node: XdsNode;
  /** refresh_delay, ms (Envoy's default 1 s). */
  refreshDelayMs?: number;
  /** request_timeout, ms (Envoy's default 1 s). */
  requestTimeoutMs?: number;
  /** Time source for poll, timeout and back-off timers. */
  clock: Clock;
  /** Jitter source. */
  random?: RandomSource;
  /** The `control_plane.` scope: connected_state and pending_requests. */
  controlPlane: Scope;
  /** Back-off after failures (default 500 ms..30 s, full jitter). */
  backoff?: JitteredBackoff;
}

/** Polls one subscription over REST-JSON; see the file comment. */
export class RestTransport implements XdsTransport {
  #sub: Subscription;
  #opts: RestTransportOptions;
  #random: RandomSource;
  #backoff: JitteredBackoff;
  #client: Deno.HttpClient | undefined;
  #timer: TimerHandle | undefined;
  #inFlight: Promise<void> | undefined;
  #abort: AbortController | undefined;
  #again = false;
  #closed = false;
  #connected: Gauge;
  #pending: Gauge;

  /** Makes the poller for `subscription`; nothing happens until `start()`. */
  constructor(subscription: Subscription, opts: RestTransportOptions) {
    this.#sub = subscription;
    this.#opts = opts;
    this.#random = opts.random ?? Math.random;
    this.#backoff = opts.backoff ?? new JitteredBackoff(undefined, undefined, this.#random);
    this.#connected = opts.controlPlane.gauge("connected_state", "never_import");
    this.#pending = opts.controlPlane.gauge("pending_requests");
  }

  /** Sends the first request now and arms the subscription's initial fetch timeout. */
  start(): void {
    if (this.#closed) return;
    this.#sub.start();
    this.#schedule(0);
  }

  /** Polls at once (names changed); if a poll is in flight, another follows it immediately. */
  requestNow(): void {
    if (this.#closed) return;
    if (this.#inFlight) {
      this.#again = true;
      return;
    }
    this.#schedule(0);
  }

  /** Stops polling: clears the timer, aborts a request in flight and closes the HTTP client. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#clearTimer();
    this.#abort?.abort();
    this.#sub.close();
    await this.#inFlight;
    this.#client?.close();
    this.#client = undefined;
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) this.#opts.clock.clearTimer(this.#timer);
    this.#timer = undefined;
  }

  #schedule(ms: number): void {
    this.#clearTimer();
    if (this.#closed) return;
    this.#timer = this.#opts.clock.setTimer(() => {
      this.#timer = undefined;
      this.#inFlight = this.#poll().finally(() => (this.#inFlight = undefined));
    }, ms);
  }

  async #poll(): Promise<void> {
    const ok = await this.#fetchOnce();
    if (this.#closed) return;
    this.#connected.set(ok ? 1 : 0);
    if (ok) this.#backoff.reset();
    const refresh = this.#opts.refreshDelayMs ?? 1000;
    const delay = this.#again
      ? 0
      : ok
      ? refresh + Math.floor(this.#random() * refresh)
      : this.#backoff.next();
    this.#again = false;
    this.#schedule(delay);
  }

  /** One request/response; true when the server answered (200 or 304), false on a transport failure. */
  async #fetchOnce(): Promise<boolean> {
    const sub = this.#sub;
    const addr = this.#opts.resolveCluster(this.#opts.clusterName);
    if (!addr) {
      sub.handleTransportFailure(`cluster "${this.#opts.clusterName}" has no host`);
      return false;
    }
    const host = addr.host.includes(":") ? `[${addr.host}]` : addr.host;
    const url = `${addr.tls ? "https" : "http"}://${host}:${addr.port}${restPath(sub.typeUrl as TypeUrl)}`;
    const abort = this.#abort = new AbortController();
    const timeoutMs = this.#opts.requestTimeoutMs ?? 1000;
    const timer = this.#opts.clock.setTimer(() => abort.abort(new Error("request timeout")), timeoutMs);
    this.#pending.inc();
    let body: { text: string } | { oversize: number } | undefined;
    try {
      this.#client ??= Deno.createHttpClient({});
      const res = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(sub.request(this.#opts.node)),
        signal: abort.signal,
        client: this.#client,
      });
      if (res.status === 304) {
        await res.body?.cancel();
      } else if (res.status !== 200) {
        await res.body?.cancel();
        throw new Error(`HTTP status ${res.status}`);
      } else {
        body = await readCapped(res, sub.maxResponseBytes);
      }
    } catch (e) {
      if (!this.#closed) {
        sub.handleTransportFailure(abort.signal.aborted ? `timeout after ${timeoutMs} ms` : errorText(e));
      }
      return false;
    } finally {
      this.#opts.clock.clearTimer(timer);
      this.#pending.dec();
      this.#abort = undefined;
    }
    if (this.#closed) return true;
    if (body === undefined) sub.handleUnchanged();
    else if ("oversize" in body) await sub.handleOversize(body.oversize);
    else await sub.handleResponseText(body.text);
    return true;
  }
}

/** Reads a response body as text unless it passes `max` bytes (then cancels and reports the bytes seen). */
async function readCapped(res: Response, max: number): Promise<{ text: string } | { oversize: number }> {
  const declared = Number(res.headers.get("content-length") ?? NaN);
  if (declared > max) {
    await res.body?.cancel();
    return { oversize: declared };
  }
  if (!res.body) return { text: "" };
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > max) {
      await reader.cancel();
      return { oversize: total };
    }
    chunks.push(value);
  }
  const all = new Uint8Array(total);
  let off = 0;
  for (const c of chunks) {
    all.set(c, off);
    off += c.byteLength;
  }
  return { text: new TextDecoder().decode(all) };
}
