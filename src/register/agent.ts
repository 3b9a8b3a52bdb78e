/**
 * The check-in loop of `nuncio register` and of the `nuncio.bootstrap.register` bootstrap extension: POST
 * /v1/registration/:service at start and every interval (± jitter, so a fleet does not stampede the registry),
 * failed check-ins retried with exponential backoff (never giving up), optionally only while a health URL
 * answers 2xx (a host whose service is down stops checking in and the registry's TTL sweeps it, as at Lyft),
 * and DELETE /v1/registration/:service/:ip when stopped. State changes are logged once, not every failure.
 */
import { type Clock, systemClock, type TimerHandle } from "../common/clock.ts";
import { Logger } from "../common/log.ts";
import type { Scope } from "../stats/store.ts";
import type { RegistrationOptions } from "./options.ts";

/** The agent's state: `starting` until the first attempt ends, `stopped` once deregistered. */
export type AgentState = "starting" | "registered" | "failing" | "unhealthy" | "stopped";

/** The fetch the agent uses (injected in tests). */
export type FetchLike = (url: string, init: RequestInit) => Promise<Response>;

/** The part of a Logger the agent writes to. */
export type AgentLog = Pick<Logger, "debug" | "info" | "warn">;

/** What an agent is given besides its options; everything defaults to the real thing. */
export interface AgentDeps {
  clock?: Clock;
  fetch?: FetchLike;
  /** A number in [0, 1) for jitter (Math.random by default). */
  random?: () => number;
  log?: AgentLog;
  /** Where `register.*` stats go (the proxy's main stats store for the bootstrap extension). */
  stats?: Scope;
}

const DEFAULT_TIMEOUT_MS = 5000;
const DEFAULT_BACKOFF_MS = 1000;

/** One host's registration with the registry; `start()` begins checking in, `stop()` deregisters. */
export class RegistrationAgent {
  readonly #o: RegistrationOptions;
  readonly #clock: Clock;
  readonly #fetch: FetchLike;
  readonly #random: () => number;
  readonly #log: AgentLog;
  readonly #stats: Scope | undefined;
  #state: AgentState = "starting";
  #failures = 0;
  #timer: TimerHandle | undefined;
  #tick: Promise<void> | undefined;
  #inflight: AbortController | undefined;
  #stopped = false;
  #stopping: Promise<void> | undefined;

  /** Builds an idle agent (nothing is sent before `start`). */
  constructor(opts: RegistrationOptions, deps: AgentDeps = {}) {
    this.#o = { ...opts, registryUrl: opts.registryUrl.replace(/\/+$/, "") };
    this.#clock = deps.clock ?? systemClock;
    this.#fetch = deps.fetch ?? ((url, init) => fetch(url, init));
    this.#random = deps.random ?? Math.random;
    this.#log = deps.log ?? new Logger("register");
    this.#stats = deps.stats?.scope("register.");
  }

  /** The current state (`registered` after a successful check-in, until a failure or stop). */
  get state(): AgentState {
    return this.#state;
  }

  /** Consecutive failed attempts (check-in or health) since the last success. */
  get failures(): number {
    return this.#failures;
  }

  /** Checks in now, then keeps checking in until `stop`. */
  start(): void {
    if (this.#stopped || this.#tick || this.#timer !== undefined) return;
    this.#log.info(
      `registering ${this.#o.service} at ${this.#o.ip}:${this.#o.port} with ${this.#o.registryUrl} every ` +
        `${this.#o.everyMs / 1000}s ± ${Math.round(this.#o.jitter * 100)}%` +
        (this.#o.healthUrl ? ` while ${this.#o.healthUrl} answers 2xx` : ""),
    );
    this.#run();
  }

  /** Resolves once no attempt is running (tests advance a manual clock, then await this). */
  async settled(): Promise<void> {
    while (this.#tick) await this.#tick;
  }

  /** Stops checking in and deregisters (DELETE); never rejects. Safe to call twice. */
  stop(): Promise<void> {
    return this.#stopping ??= this.#stop();
  }

  async #stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== undefined) this.#clock.clearTimer(this.#timer);
    this.#timer = undefined;
    this.#inflight?.abort(new Error("Stopping"));
    await this.settled();
    const url = `${this.#o.registryUrl}/v1/registration/${encodeURIComponent(this.#o.service)}/` +
      encodeURIComponent(this.#o.ip);
    try {
      const { status, body } = await this.#request(url, { method: "DELETE" });
      // 404: the registry had already swept us (or never saw us): nothing to remove
      if ((status < 200 || status > 299) && status !== 404) throw new Error(httpError(status, body));
      this.#log.info(`deregistered ${this.#o.service} at ${this.#o.ip} from ${this.#o.registryUrl}`);
      this.#stats?.counter("deregister_ok").inc();
    } catch (e) {
      this.#log.warn(`deregistration failed (the registry's TTL will remove the host): ${message(e)}`);
      this.#stats?.counter("deregister_failed").inc();
    }
    this.#setState("stopped");
  }

  #run(): void {
    this.#timer = undefined;
    const t = this.#attempt().then((delay) => {
      this.#tick = undefined;
      if (!this.#stopped) this.#timer = this.#clock.setTimer(() => this.#run(), delay);
    });
    this.#tick = t;
  }

  /** One attempt: health gate, then check-in; resolves to the delay before the next one. */
  async #attempt(): Promise<number> {
    if (this.#o.healthUrl) {
      const why = await this.#healthProblem(this.#o.healthUrl);
      if (this.#stopped) return 0;
      if (why) {
        this.#stats?.counter("health_check_failed").inc();
        if (this.#state !== "unhealthy") {
          this.#log.warn(`${this.#o.healthUrl} is unhealthy (${why}): not checking in until it answers 2xx`);
        } else this.#log.debug(`still unhealthy: ${why}`);
        this.#setState("unhealthy");
        return this.#backoff();
      }
    }
    const url = `${this.#o.registryUrl}/v1/registration/${encodeURIComponent(this.#o.service)}`;
    try {
      const { status, body } = await this.#request(url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(this.#checkInBody()),
      });
      if (status < 200 || status > 299) throw new Error(httpError(status, body));
    } catch (e) {
      if (this.#stopped) return 0;
      this.#stats?.counter("check_in_failed").inc();
      if (this.#state !== "failing") {
        this.#log.warn(`check-in to ${this.#o.registryUrl} failed (${message(e)}): retrying with backoff`);
      } else this.#log.debug(`check-in failed again (${this.#failures + 1} in a row): ${message(e)}`);
      this.#setState("failing");
      return this.#backoff();
    }
    this.#stats?.counter("check_in_ok").inc();
    if (this.#state !== "registered") {
      const after = this.#failures ? ` after ${this.#failures} failed attempt(s)` : "";
      this.#log.info(`checked in ${this.#o.service} at ${this.#o.ip}:${this.#o.port}${after}`);
    } else this.#log.debug(`checked in ${this.#o.service}`);
    this.#failures = 0;
    this.#setState("registered");
    return this.#jittered(this.#o.everyMs);
  }

  #checkInBody(): Record<string, unknown> {
    const b: Record<string, unknown> = { ip: this.#o.ip, port: this.#o.port };
    if (this.#o.revision !== undefined) b.revision = this.#o.revision;
    if (this.#o.repo !== undefined) b.service_repo_name = this.#o.repo;
    if (this.#o.tags && Object.keys(this.#o.tags).length) b.tags = this.#o.tags;
    return b;
  }

  /** The next delay after a failure: base × 2^(n-1), capped at the interval, jittered. */
  #backoff(): number {
    this.#failures++;
    const base = this.#o.backoffBaseMs ?? DEFAULT_BACKOFF_MS;
    return this.#jittered(Math.min(base * 2 ** Math.min(this.#failures - 1, 30), this.#o.everyMs));
  }

  #jittered(ms: number): number {
    return Math.max(1, Math.round(ms * (1 + this.#o.jitter * (2 * this.#random() - 1))));
  }

  async #healthProblem(url: string): Promise<string | undefined> {
    try {
      const { status } = await this.#request(url, { method: "GET" });
      return status >= 200 && status <= 299 ? undefined : `HTTP ${status}`;
    } catch (e) {
      return message(e);
    }
  }

  /** One request with the timeout from the injected clock; the body is read (so no resource leaks). */
  async #request(url: string, init: RequestInit): Promise<{ status: number; body: string }> {
    const ac = new AbortController();
    this.#inflight = ac;
    const ms = this.#o.requestTimeoutMs ?? DEFAULT_TIMEOUT_MS;
    const t = this.#clock.setTimer(() => ac.abort(new Error(`No answer within ${ms} ms`)), ms);
    try {
      const res = await this.#fetch(url, { ...init, signal: ac.signal });
      return { status: res.status, body: await res.text() };
    } catch (e) {
      throw ac.signal.aborted ? ac.signal.reason : e;
    } finally {
      this.#clock.clearTimer(t);
      if (this.#inflight === ac) this.#inflight = undefined;
    }
  }

  #setState(s: AgentState): void {
    this.#state = s;
    this.#stats?.gauge("registered", "never_import").set(s === "registered" ? 1 : 0);
  }
}

function httpError(status: number, body: string): string {
  const b = body.trim().slice(0, 200);
  return b ? `HTTP ${status}: ${b}` : `HTTP ${status}`;
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
