/**
 * Incremental (DELTA_GRPC) xDS, as Envoy's DeltaSubscriptionState with its watch map: the server sends only the
 * resources that changed (with a version each) and the names removed; the client subscribes and unsubscribes
 * names as they change and, on a new stream, tells the server the versions it holds
 * (`initial_resource_versions`).
 * - `DeltaSubscription`: one watch (one Subscription the XdsClient made: its names, callbacks, stats, initial
 *   fetch timeout) and the resources it accepted. Each part of a response it gets becomes the same XdsUpdate the
 *   apply layer gets from state of the world (`resources`: the changed ones, `removed`: names gone).
 * - `DeltaGroup`: the stream state of one type (the MuxWatcher a mux sees): the union of its watches' names
 *   (subscribe/unsubscribe as watches come, go and change names), the nonce and error to echo; each response is
 *   decoded once, split by resource name and handed to the watches that asked for it (wildcard watches get
 *   everything; a removed name goes to the watches that held it) and is NACKed when any of them rejects it.
 *   A watch that starts wanting a name another watch of the group already holds (the server will not resend
 *   it) gets that watch's copy.
 */
import type { TimerHandle } from "../common/clock.ts";
import { Logger } from "../common/log.ts";
import {
  decodeAny,
  type DeltaDiscoveryRequest,
  encodeDeltaDiscoveryRequest,
  type RawDeltaDiscoveryResponse,
  type RawDiscoveryResponse,
} from "./codec/mod.ts";
import type { MuxWatcher } from "./grpc.ts";
import {
  errorText,
  NACK_CODE,
  type Subscription,
  type SubscriptionOptions,
  type SubscriptionStats,
  subscriptionStats,
  versionHash,
} from "./subscription.ts";
import {
  type ErrorDetail,
  type InitialFetchOutcome,
  isWildcardType,
  RESOURCE_WRAPPER_TYPE,
  TYPE_URLS,
  type XdsNode,
  type XdsUpdate,
} from "./types.ts";

const log = new Logger("config");

/** One decoded resource of a delta response. */
interface DeltaResource {
  json: unknown;
  version: string;
}

/** One watch of a delta type; see the file comment. */
export class DeltaSubscription {
  readonly typeUrl: string;
  readonly wildcard: boolean;
  readonly #sub: Subscription;
  readonly #opts: Readonly<SubscriptionOptions>;
  /** Accepted resources: name -> version and JSON. */
  #versions = new Map<string, string>();
  #resources = new Map<string, unknown>();
  /** Copies taken from another watch of the group: name -> version (not offered twice). */
  readonly seeded = new Map<string, string>();
  #systemVersion = "";
  #closed = false;
  #initDone = false;
  #initTimer: TimerHandle | undefined;
  #stats: SubscriptionStats;

  /** Delta state for `sub`'s type, names and callbacks. */
  constructor(sub: Subscription) {
    this.#sub = sub;
    this.#opts = sub.options;
    this.typeUrl = sub.typeUrl;
    this.wildcard = isWildcardType(sub.typeUrl);
    this.#stats = subscriptionStats(this.#opts.stats);
  }

  /** The names it wants (empty for a wildcard type). */
  get names(): readonly string[] {
    return this.wildcard ? [] : this.#sub.names;
  }
  /** The last system_version_info accepted. */
  get version(): string {
    return this.#systemVersion;
  }
  /** Accepted resources by name (JSON without "@type"). */
  get resources(): ReadonlyMap<string, unknown> {
    return this.#resources;
  }
  /** Accepted versions by name. */
  get resourceVersions(): ReadonlyMap<string, string> {
    return this.#versions;
  }
  /** True once closed. */
  get closed(): boolean {
    return this.#closed;
  }

  /** True when it wants resource `name`. */
  wants(name: string): boolean {
    return this.wildcard || this.#sub.names.includes(name);
  }

  /** Arms the initial fetch timeout. */
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

  /** Forgets resources of names no longer wanted (Envoy drops them on unsubscribe). */
  prune(): void {
    if (this.wildcard) return;
    const names = new Set(this.#sub.names);
    for (const n of [...this.#versions.keys()]) {
      if (!names.has(n)) {
        this.#versions.delete(n);
        this.#resources.delete(n);
      }
    }
    for (const n of [...this.seeded.keys()]) if (!names.has(n)) this.seeded.delete(n);
  }

  /** Its part of a response: validated and applied; the NACK reason, or undefined when accepted. */
  async apply(
    version: string,
    changed: ReadonlyMap<string, DeltaResource>,
    removed: readonly string[],
  ): Promise<string | undefined> {
    if (this.#closed) return undefined;
    this.#stats.attempt.inc();
    if (changed.size === 0 && removed.length === 0) this.#stats.empty.inc();
    const resources = new Map([...changed].map(([n, r]) => [n, r.json]));
    const update: XdsUpdate = { typeUrl: this.typeUrl, version, resources, removed: [...removed] };
    let error: string | undefined;
    try {
      error = await this.#opts.validateAndApply(update);
    } catch (e) {
      error = errorText(e);
    }
    if (this.#closed) return undefined;
    if (error !== undefined) return this.reject(error || "Rejected");
    for (const [n, r] of changed) {
      this.#resources.set(n, r.json);
      this.#versions.set(n, r.version);
    }
    for (const n of removed) {
      this.#resources.delete(n);
      this.#versions.delete(n);
    }
    this.#systemVersion = version;
    this.#stats.success.inc();
    this.#stats.version.set(versionHash(version));
    this.#finishInit("applied");
    return undefined;
  }

  /** A rejected response (counted, logged); returns `message`. */
  reject(message: string, decodeError = false): string {
    if (decodeError) this.#stats.attempt.inc();
    this.#stats.rejected.inc();
    log.warn(`${this.typeUrl}: delta update rejected: ${message}`);
    this.#finishInit("rejected");
    return message;
  }

  /** The stream failed (counted; the accepted state stays). */
  failure(reason: string): void {
    this.#stats.attempt.inc();
    this.#stats.failure.inc();
    log.debug(`${this.typeUrl}: delta stream failed: ${reason}`);
  }

  /** Stops (the init timer; later responses are ignored). */
  close(): void {
    this.#closed = true;
    if (this.#initTimer !== undefined) this.#opts.clock.clearTimer(this.#initTimer);
    this.#initTimer = undefined;
    this.#sub.close();
  }

  #finishInit(outcome: InitialFetchOutcome): void {
    if (this.#initDone) return;
    this.#initDone = true;
    if (this.#initTimer !== undefined) this.#opts.clock.clearTimer(this.#initTimer);
    this.#initTimer = undefined;
    this.#opts.onInitialFetchDone?.(outcome);
  }
}

/** The delta stream state of one type shared by its watches; see the file comment. */
export class DeltaGroup implements MuxWatcher {
  readonly subs = new Set<DeltaSubscription>();
  /** Names the server was last told about on this stream. */
  #told = new Set<string>();
  #nonce = "";
  #errorDetail: ErrorDetail | undefined;
  #queue: Promise<void> = Promise.resolve();
  #closed = false;

  constructor(readonly typeUrl: string) {}

  /** Adds a watch (its initial fetch timeout starts); the mux then sends the group's request. */
  add(d: DeltaSubscription): void {
    this.subs.add(d);
    if (!this.#closed) d.start();
  }

  /** Removes a watch (closed); its names leave with the next request. */
  delete(d: DeltaSubscription): void {
    this.subs.delete(d);
    d.close();
  }

  /** MuxWatcher: watches start when added. */
  start(): void {}

  /** The DeltaDiscoveryRequest to send now, as JSON (fields left out when empty). */
  requestJson(node: XdsNode | undefined, fresh: boolean): DeltaDiscoveryRequest {
    const wildcard = [...this.subs].some((s) => s.wildcard);
    const names = new Set<string>();
    if (!wildcard) { for (const s of this.subs) for (const n of s.names) names.add(n); }
    for (const s of this.subs) s.prune();
    const r: DeltaDiscoveryRequest = { type_url: this.typeUrl };
    if (node) r.node = node;
    if (fresh) {
      // a new stream: everything we want, and what we already hold
      if (names.size) r.resource_names_subscribe = [...names].sort();
      const held = this.#held();
      if (held.size) {
        r.initial_resource_versions = Object.fromEntries(
          [...held].map(([n, v]) => [n, v.version]).sort(([a], [b]) => a < b ? -1 : 1),
        );
      }
    } else {
      const sub = [...names].filter((n) => !this.#told.has(n)).sort();
      const unsub = [...this.#told].filter((n) => !names.has(n)).sort();
      if (sub.length) r.resource_names_subscribe = sub;
      if (unsub.length) r.resource_names_unsubscribe = unsub;
      if (this.#nonce) r.response_nonce = this.#nonce;
      if (this.#errorDetail) r.error_detail = { ...this.#errorDetail };
    }
    this.#told = names;
    this.#nonce = "";
    this.#errorDetail = undefined;
    this.#seed();
    return r;
  }

  /** MuxWatcher: the encoded request. */
  request(node: XdsNode | undefined, fresh: boolean): Uint8Array {
    return encodeDeltaDiscoveryRequest(this.requestJson(node, fresh));
  }

  /** MuxWatcher: one DeltaDiscoveryResponse; resolves once its ACK/NACK is decided, never rejects. */
  handle(raw: RawDiscoveryResponse | RawDeltaDiscoveryResponse): Promise<void> {
    return this.#enqueue(() => this.#handle(raw as RawDeltaDiscoveryResponse));
  }

  /** MuxWatcher: the stream failed. */
  failure(reason: string): void {
    this.#nonce = "";
    this.#errorDetail = undefined;
    for (const s of this.subs) s.failure(reason);
  }

  /** MuxWatcher: stops every watch. */
  close(): void {
    this.#closed = true;
    for (const s of this.subs) s.close();
  }

  #enqueue(fn: () => Promise<void>): Promise<void> {
    const run = this.#queue.then(() => (this.#closed ? undefined : fn()));
    this.#queue = run.catch((e) => log.error(`${this.typeUrl}: ${errorText(e)}`));
    return this.#queue;
  }

  /** What the watches hold: name -> the version and JSON of one holder. */
  #held(): Map<string, DeltaResource> {
    const held = new Map<string, DeltaResource>();
    for (const s of this.subs) {
      for (const [n, version] of s.resourceVersions) {
        if (!held.has(n)) held.set(n, { version, json: s.resources.get(n) });
      }
    }
    return held;
  }

  /** Hands each watch the resources it wants that another watch holds and it does not (once per version). */
  #seed(): void {
    if (this.subs.size < 2) return;
    const held = this.#held();
    for (const s of this.subs) {
      const copies = new Map<string, DeltaResource>();
      for (const [n, r] of held) {
        if (!s.wants(n) || s.resourceVersions.has(n) || s.seeded.get(n) === r.version) continue;
        s.seeded.set(n, r.version);
        copies.set(n, r);
      }
      if (copies.size === 0) continue;
      const version = [...this.subs].find((o) => o !== s && o.version)?.version ?? "";
      // not an answer to any response: nothing is ACKed or NACKed for it
      this.#enqueue(async () => void await s.apply(version, copies, []));
    }
  }

  async #handle(res: RawDeltaDiscoveryResponse): Promise<void> {
    const decoded = this.#decode(res);
    if (typeof decoded === "string") {
      for (const s of this.subs) s.reject(decoded, true);
      this.#nonce = res.nonce;
      this.#errorDetail = { code: NACK_CODE, message: decoded };
      return;
    }
    const removedAll = [...new Set(res.removed_resources)];
    const empty = decoded.size === 0 && removedAll.length === 0;
    const parts: Promise<string | undefined>[] = [];
    for (const s of this.subs) {
      const own = new Map([...decoded].filter(([n]) => s.wants(n)));
      const removed = removedAll.filter((n) => s.resourceVersions.has(n));
      if (!empty && own.size === 0 && removed.length === 0) continue;
      parts.push(s.apply(res.system_version_info, own, removed));
    }
    const errors = (await Promise.all(parts)).filter((m) => m !== undefined);
    // set once decided: a request that leaves meanwhile (names changed) must not ACK it early
    this.#nonce = res.nonce;
    this.#errorDetail = errors.length ? { code: NACK_CODE, message: errors.join("; ") } : undefined;
  }

  /** The changed resources by name, or why the whole response is rejected. */
  #decode(res: RawDeltaDiscoveryResponse): string | Map<string, DeltaResource> {
    if (res.type_url !== "" && res.type_url !== this.typeUrl) {
      return `DeltaDiscoveryResponse type_url ${res.type_url} is not ${this.typeUrl}`;
    }
    const resources = new Map<string, DeltaResource>();
    for (let i = 0; i < res.resources.length; i++) {
      const r = res.resources[i];
      if (!r.resource) continue; // a TTL heartbeat: nothing changed
      let json: Record<string, unknown>;
      try {
        json = decodeAny(r.resource.type_url, r.resource.value);
      } catch (e) {
        return `resources[${i}]: ${errorText(e)}`;
      }
      if (json["@type"] === RESOURCE_WRAPPER_TYPE && isObject(json.resource)) json = json.resource;
      if (json["@type"] !== this.typeUrl) {
        return `resources[${i}]: type ${JSON.stringify(json["@type"])} does not match ${this.typeUrl}`;
      }
      const { "@type": _, ...fields } = json;
      const own = this.typeUrl === TYPE_URLS.endpoint ? fields.cluster_name : fields.name;
      const name = r.name || (typeof own === "string" ? own : "");
      if (name === "") return `resources[${i}]: missing name`;
      if (resources.has(name)) return `resources[${i}]: duplicate resource name "${name}"`;
      if (![...this.subs].some((s) => s.wants(name))) {
        log.debug(`${this.typeUrl}: ignoring unsubscribed resource "${name}"`);
        continue;
      }
      resources.set(name, { json: fields, version: r.version });
    }
    return resources;
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
