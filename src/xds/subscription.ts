/**
 * One state-of-the-world xDS subscription (one resource type on one config source), as Envoy keeps it:
 * version_info and nonce, subscribed names, last good resources, ACK/NACK, stats and the initial fetch timeout.
 * Transports (rest.ts, file.ts, later gRPC/ADS) feed it responses and send what `request()` returns.
 */
import type { Clock, TimerHandle } from "../common/clock.ts";
import { Logger } from "../common/log.ts";
import { xxhash64String } from "../common/xxhash64.ts";
import type { Counter, Gauge, Scope } from "../stats/store.ts";
import {
  type DiscoveryRequest,
  type ErrorDetail,
  type InitialFetchOutcome,
  isWildcardType,
  RESOURCE_WRAPPER_TYPE,
  TYPE_URLS,
  type ValidateAndApply,
  type XdsNode,
  type XdsUpdate,
} from "./types.ts";

/** google.rpc.Code INTERNAL: what Envoy's gRPC mux puts in error_detail.code on a NACK. */
export const NACK_CODE = 13;

/** Default cap on one DiscoveryResponse (bytes); larger responses are rejected unread. */
export const DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024;

const log = new Logger("config");

/** Options of a Subscription. */
export interface SubscriptionOptions {
  /** The resource type URL (TYPE_URLS). */
  typeUrl: string;
  /** Named subscription (RDS, EDS, SDS); ignored for wildcard types (LDS, CDS). */
  names?: Iterable<string>;
  /** Called for every decoded response: undefined = applied (ACK), a string = rejected (NACK). */
  validateAndApply: ValidateAndApply;
  /** Scope for update_* and version (e.g. `cluster_manager.cds.`). */
  stats: Scope;
  /** Time source for the initial fetch timeout. */
  clock: Clock;
  /** Milliseconds; 0 disables (Envoy's default is 15 s, from the ConfigSource). */
  initialFetchTimeoutMs?: number;
  /** Called once: on the first applied or rejected response, or when the initial fetch timeout passes. */
  onInitialFetchDone?: (outcome: InitialFetchOutcome) => void;
  /** Largest response accepted, bytes (default 64 MiB). */
  maxResponseBytes?: number;
}

/** The name field of each resource type. */
function resourceName(typeUrl: string, r: Record<string, unknown>): unknown {
  return typeUrl === TYPE_URLS.endpoint ? r.cluster_name : r.name;
}

/** Envoy's version gauge: xxHash64 of version_info (the low 52 bits, exact in a JS number). */
export function versionHash(version: string): number {
  return Number(xxhash64String(version) & 0xf_ffff_ffff_ffffn);
}

/** A decoding failure: the whole response is rejected with this message. */
class Reject {
  constructor(readonly message: string, readonly nonce: string | undefined) {}
}

/** Envoy's per-subscription counters (`update_*`, `init_fetch_timeout`) and the `version` gauge. */
export interface SubscriptionStats {
  attempt: Counter;
  success: Counter;
  failure: Counter;
  rejected: Counter;
  empty: Counter;
  initTimeout: Counter;
  version: Gauge;
}

/** Registers a subscription's stats in `s` (state of the world and delta alike). */
export function subscriptionStats(s: Scope): SubscriptionStats {
  return {
    attempt: s.counter("update_attempt"),
    success: s.counter("update_success"),
    failure: s.counter("update_failure"),
    rejected: s.counter("update_rejected"),
    empty: s.counter("update_empty"),
    initTimeout: s.counter("init_fetch_timeout"),
    version: s.gauge("version", "never_import"),
  };
}

/** State of the world for one resource type; see the file comment. */
export class Subscription {
  readonly typeUrl: string;
  readonly wildcard: boolean;
  readonly maxResponseBytes: number;
  #opts: SubscriptionOptions;
  #names = new Set<string>();
  #version = "";
  #nonce = "";
  #errorDetail: ErrorDetail | undefined;
  #resources = new Map<string, unknown>();
  #initDone = false;
  #initTimer: TimerHandle | undefined;
  #closed = false;
  #queue: Promise<void> = Promise.resolve();
  #stats: SubscriptionStats;

  /** Makes the subscription; call `start()` when its transport starts. */
  constructor(opts: SubscriptionOptions) {
    this.#opts = opts;
    this.typeUrl = opts.typeUrl;
    this.wildcard = isWildcardType(opts.typeUrl);
    this.maxResponseBytes = opts.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
    if (!this.wildcard) { for (const n of opts.names ?? []) this.#names.add(n); }
    this.#stats = subscriptionStats(opts.stats);
  }

  /** The last accepted version_info ("" before the first ACK). */
  get version(): string {
    return this.#version;
  }
  /** The nonce of the last response handled. */
  get nonce(): string {
    return this.#nonce;
  }
  /** The last good resources by name (JSON without "@type"). */
  get resources(): ReadonlyMap<string, unknown> {
    return this.#resources;
  }
  /** The subscribed names (empty for wildcard types). */
  get names(): readonly string[] {
    return [...this.#names].sort();
  }
  /** True once the initial fetch is done (applied, rejected or timed out). */
  get initialFetchDone(): boolean {
    return this.#initDone;
  }

  /** Arms the initial fetch timeout (once; called by the transport when it starts). */
  start(): void {
    const ms = this.#opts.initialFetchTimeoutMs ?? 0;
    if (this.#initDone || this.#initTimer !== undefined || ms <= 0 || this.#closed) return;
    this.#initTimer = this.#opts.clock.setTimer(() => {
      this.#initTimer = undefined;
      this.#stats.initTimeout.inc();
      log.warn(`${this.typeUrl}: initial fetch timed out after ${ms} ms`);
      this.#finishInit("timeout");
    }, ms);
  }

  /** Replaces the subscribed names (named types); true when they changed and a new request is due. */
  setNames(names: Iterable<string>): boolean {
    if (this.wildcard) return false;
    const next = new Set(names);
    if (next.size === this.#names.size && [...next].every((n) => this.#names.has(n))) return false;
    this.#names = next;
    for (const n of [...this.#resources.keys()]) if (!next.has(n)) this.#resources.delete(n);
    return true;
  }

  /** The DiscoveryRequest to send now (ACK, NACK or a first request), JSON fields omitted when empty. */
  request(node?: XdsNode): DiscoveryRequest {
    const r: DiscoveryRequest = {
      version_info: this.#version,
      resource_names: [...this.names],
      type_url: this.typeUrl,
    };
    if (node) r.node = node;
    r.response_nonce = this.#nonce;
    if (this.#errorDetail) r.error_detail = { ...this.#errorDetail };
    if (!r.version_info) delete r.version_info;
    if (!r.resource_names?.length) delete r.resource_names;
    if (!r.response_nonce) delete r.response_nonce;
    return r;
  }

  /** A response body as text (JSON): size-capped and parsed here, never throws. */
  handleResponseText(text: string, parse: (text: string) => unknown = JSON.parse): Promise<void> {
    if (text.length > this.maxResponseBytes) return this.handleOversize(text.length);
    let body: unknown;
    try {
      body = parse(text);
    } catch (e) {
      return this.#enqueue(() =>
        this.#reject(new Reject(`Malformed DiscoveryResponse: ${errorText(e)}`, undefined))
      );
    }
    return this.handleResponse(body);
  }

  /** A response over `maxResponseBytes` (its body was not read): rejected, the last good config stays. */
  handleOversize(bytes: number): Promise<void> {
    const msg = `DiscoveryResponse of ${bytes} bytes is over the limit of ${this.maxResponseBytes} bytes`;
    return this.#enqueue(() => this.#reject(new Reject(msg, undefined)));
  }

  /** A decoded DiscoveryResponse (resources as JSON objects with "@type"); never throws. */
  handleResponse(body: unknown): Promise<void> {
    return this.#enqueue(async () => {
      const decoded = this.#decode(body);
      if (decoded instanceof Reject) return this.#reject(decoded);
      await this.#apply(decoded);
    });
  }

  /** A response that could not be decoded (gRPC: malformed protobuf or resource): rejected whole (NACK). */
  handleDecodeError(message: string, nonce?: string): Promise<void> {
    return this.#enqueue(() => this.#reject(new Reject(message, nonce)));
  }

  /** The options it was made with (a delta transport builds its DeltaSubscription from them). */
  get options(): Readonly<SubscriptionOptions> {
    return this.#opts;
  }

  /** The server said nothing changed (REST 304): counts an attempt and a success. */
  handleUnchanged(): void {
    this.#stats.attempt.inc();
    this.#stats.success.inc();
  }

  /** The transport failed (connect, timeout, HTTP error, unreadable file): counted, last good config kept. */
  handleTransportFailure(reason: string): void {
    this.#stats.attempt.inc();
    this.#stats.failure.inc();
    log.debug(`${this.typeUrl}: fetch failed: ${reason}`);
  }

  /** Stops the initial fetch timer; later responses are ignored. */
  close(): void {
    this.#closed = true;
    if (this.#initTimer !== undefined) this.#opts.clock.clearTimer(this.#initTimer);
    this.#initTimer = undefined;
  }

  #enqueue(fn: () => void | Promise<void>): Promise<void> {
    const run = this.#queue.then(() => (this.#closed ? undefined : fn()));
    this.#queue = run.catch((e) => log.error(`${this.typeUrl}: ${errorText(e)}`));
    return this.#queue;
  }

  #decode(body: unknown): XdsUpdate & { nonce: string } | Reject {
    if (!isObject(body)) return new Reject("Malformed DiscoveryResponse: not an object", undefined);
    const nonce = typeof body.nonce === "string" ? body.nonce : undefined;
    const version = body.version_info ?? "";
    if (typeof version !== "string") return new Reject("Malformed DiscoveryResponse: version_info", nonce);
    if (body.type_url !== undefined && body.type_url !== "" && body.type_url !== this.typeUrl) {
      return new Reject(`DiscoveryResponse type_url ${String(body.type_url)} is not ${this.typeUrl}`, nonce);
    }
    const list = body.resources ?? [];
    if (!Array.isArray(list)) {
      return new Reject("Malformed DiscoveryResponse: resources is not a list", nonce);
    }
    const resources = new Map<string, unknown>();
    for (let i = 0; i < list.length; i++) {
      let r = list[i];
      let wrappedName: unknown;
      if (isObject(r) && r["@type"] === RESOURCE_WRAPPER_TYPE) {
        wrappedName = r.name;
        r = r.resource;
      }
      if (!isObject(r)) return new Reject(`resources[${i}]: not an object`, nonce);
      const type = r["@type"];
      if (type !== this.typeUrl) {
        return new Reject(
          `resources[${i}]: type ${JSON.stringify(type)} does not match ${this.typeUrl}`,
          nonce,
        );
      }
      const { "@type": _, ...fields } = r;
      const name = resourceName(this.typeUrl, fields) ?? wrappedName;
      if (typeof name !== "string" || name === "") return new Reject(`resources[${i}]: missing name`, nonce);
      if (resources.has(name)) return new Reject(`resources[${i}]: duplicate resource name "${name}"`, nonce);
      if (!this.wildcard && !this.#names.has(name)) {
        log.debug(`${this.typeUrl}: ignoring unsubscribed resource "${name}"`);
        continue;
      }
      resources.set(name, fields);
    }
    const removed = this.wildcard ? [...this.#resources.keys()].filter((n) => !resources.has(n)) : [];
    return { typeUrl: this.typeUrl, version, resources, removed, nonce: nonce ?? "" };
  }

  async #apply(u: XdsUpdate & { nonce: string }): Promise<void> {
    this.#stats.attempt.inc();
    if (u.resources.size === 0) this.#stats.empty.inc();
    const { nonce, ...update } = u;
    let error: string | undefined;
    try {
      error = await this.#opts.validateAndApply(update);
    } catch (e) {
      error = errorText(e);
    }
    if (this.#closed) return;
    this.#nonce = nonce;
    if (error !== undefined) {
      this.#nack(error || "Rejected");
      return;
    }
    this.#version = u.version;
    this.#errorDetail = undefined;
    if (this.wildcard) this.#resources = new Map(u.resources);
    else for (const [n, r] of u.resources) this.#resources.set(n, r);
    this.#stats.success.inc();
    this.#stats.version.set(versionHash(u.version));
    log.debug(
      `${this.typeUrl}: applied version ${JSON.stringify(u.version)} (${u.resources.size} resources)`,
    );
    this.#finishInit("applied");
  }

  #reject(r: Reject): void {
    this.#stats.attempt.inc();
    if (r.nonce !== undefined) this.#nonce = r.nonce;
    this.#nack(r.message);
  }

  #nack(message: string): void {
    this.#errorDetail = { code: NACK_CODE, message };
    this.#stats.rejected.inc();
    log.warn(`${this.typeUrl}: update rejected: ${message}`);
    this.#finishInit("rejected");
  }

  #finishInit(outcome: InitialFetchOutcome): void {
    if (this.#initDone) return;
    this.#initDone = true;
    if (this.#initTimer !== undefined) this.#opts.clock.clearTimer(this.#initTimer);
    this.#initTimer = undefined;
    this.#opts.onInitialFetchDone?.(outcome);
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** An error's message (or the value as text). */
export function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
