/**
 * One incremental (DELTA_GRPC) xDS subscription, as Envoy's DeltaSubscriptionState: the server sends only the
 * resources that changed (with a version each) and the names removed; the client subscribes and unsubscribes
 * names as they change and, on a new stream, tells the server the versions it holds
 * (`initial_resource_versions`). Each response becomes the same XdsUpdate the apply layer gets from state of the
 * world (`resources`: the changed ones, `removed`: names gone) and is ACKed or NACKed with its nonce.
 * It reads its names, callbacks and stats scope from the Subscription the XdsClient made, which keeps the names.
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

/** Incremental state for one type; see the file comment. */
export class DeltaSubscription implements MuxWatcher {
  readonly typeUrl: string;
  readonly wildcard: boolean;
  readonly #sub: Subscription;
  readonly #opts: Readonly<SubscriptionOptions>;
  /** Accepted resources: name -> version and JSON. */
  #versions = new Map<string, string>();
  #resources = new Map<string, unknown>();
  /** Names the server was last told about on this stream. */
  #told = new Set<string>();
  #nonce = "";
  #errorDetail: ErrorDetail | undefined;
  #systemVersion = "";
  #queue: Promise<void> = Promise.resolve();
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

  /** The DeltaDiscoveryRequest to send now, as JSON (fields left out when empty). */
  requestJson(node: XdsNode | undefined, fresh: boolean): DeltaDiscoveryRequest {
    const names = new Set(this.wildcard ? [] : this.#sub.names);
    const r: DeltaDiscoveryRequest = { type_url: this.typeUrl };
    if (node) r.node = node;
    if (fresh) {
      // a new stream: everything we want, and what we already hold
      if (names.size) r.resource_names_subscribe = [...names].sort();
      if (this.#versions.size) {
        r.initial_resource_versions = Object.fromEntries(
          [...this.#versions].sort(([a], [b]) => a < b ? -1 : 1),
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
    // resources of names no longer wanted are forgotten (Envoy drops them on unsubscribe)
    if (!this.wildcard) {
      for (const n of [...this.#versions.keys()]) {
        if (!names.has(n)) {
          this.#versions.delete(n);
          this.#resources.delete(n);
        }
      }
    }
    return r;
  }

  /** MuxWatcher: the encoded request. */
  request(node: XdsNode | undefined, fresh: boolean): Uint8Array {
    return encodeDeltaDiscoveryRequest(this.requestJson(node, fresh));
  }

  /** MuxWatcher: one DeltaDiscoveryResponse; never rejects. */
  handle(raw: RawDiscoveryResponse | RawDeltaDiscoveryResponse): Promise<void> {
    const res = raw as RawDeltaDiscoveryResponse;
    const run = this.#queue.then(() => (this.#closed ? undefined : this.#handle(res)));
    this.#queue = run.catch((e) => log.error(`${this.typeUrl}: ${errorText(e)}`));
    return this.#queue;
  }

  async #handle(res: RawDeltaDiscoveryResponse): Promise<void> {
    this.#stats.attempt.inc();
    this.#nonce = res.nonce;
    const decoded = this.#decode(res);
    if (typeof decoded === "string") return this.#nack(decoded);
    if (decoded.resources.size === 0 && decoded.removed.length === 0) this.#stats.empty.inc();
    let error: string | undefined;
    try {
      error = await this.#opts.validateAndApply(decoded.update);
    } catch (e) {
      error = errorText(e);
    }
    if (this.#closed) return;
    if (error !== undefined) return this.#nack(error || "Rejected");
    for (const [n, r] of decoded.resources) {
      this.#resources.set(n, r);
      this.#versions.set(n, decoded.versions.get(n)!);
    }
    for (const n of decoded.removed) {
      this.#resources.delete(n);
      this.#versions.delete(n);
    }
    this.#systemVersion = res.system_version_info;
    this.#errorDetail = undefined;
    this.#stats.success.inc();
    this.#stats.version.set(versionHash(res.system_version_info));
    this.#finishInit("applied");
  }

  #decode(res: RawDeltaDiscoveryResponse):
    | string
    | {
      update: XdsUpdate;
      resources: Map<string, unknown>;
      removed: string[];
      versions: Map<string, string>;
    } {
    if (res.type_url !== "" && res.type_url !== this.typeUrl) {
      return `DeltaDiscoveryResponse type_url ${res.type_url} is not ${this.typeUrl}`;
    }
    const wanted = this.wildcard ? undefined : new Set(this.#sub.names);
    const resources = new Map<string, unknown>();
    const versions = new Map<string, string>();
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
      if (wanted && !wanted.has(name)) {
        log.debug(`${this.typeUrl}: ignoring unsubscribed resource "${name}"`);
        continue;
      }
      resources.set(name, fields);
      versions.set(name, r.version);
    }
    const removed = [...new Set(res.removed_resources)].filter((n) => this.#versions.has(n));
    const update: XdsUpdate = { typeUrl: this.typeUrl, version: res.system_version_info, resources, removed };
    return { update, resources, removed, versions };
  }

  #nack(message: string): void {
    this.#errorDetail = { code: NACK_CODE, message };
    this.#stats.rejected.inc();
    log.warn(`${this.typeUrl}: delta update rejected: ${message}`);
    this.#finishInit("rejected");
  }

  /** MuxWatcher: the stream failed (counted; the accepted state stays). */
  failure(reason: string): void {
    this.#stats.attempt.inc();
    this.#stats.failure.inc();
    this.#nonce = "";
    this.#errorDetail = undefined;
    log.debug(`${this.typeUrl}: delta stream failed: ${reason}`);
  }

  /** MuxWatcher: stops (the init timer; later responses are ignored). */
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

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
