/**
 * Secrets (`envoy.extensions.transport_sockets.tls.v3.Secret`): the schema shared by the bootstrap's
 * `static_resources.secrets` and SDS, and the per-thread SecretRegistry that TLS contexts read by name. Each
 * event loop has one registry (the main thread's serves the in-process data plane and health checks; each
 * worker's is fed by the updates the main thread validated). A TLS context naming a secret watches it: a new
 * certificate is served on new handshakes, a new validation context is used by new upstream connections;
 * connections already up keep what they negotiated.
 */
import { z } from "zod/mini";
import { configError, type ConfigIssue } from "../config/errors.ts";
import { notSupportedFields } from "../config/schema_util.ts";
import { Logger } from "../common/log.ts";
import { type CertifiedKey, readDataSource, validateCertifiedKey, validateTrustedCa } from "./cert_store.ts";
import { parsePemCrls } from "./crl.ts";
import { tlsCertificate, validationContext, type ValidationContextConfig } from "./tls_config.ts";

const log = new Logger("secret");

/** envoy.extensions.transport_sockets.tls.v3.Secret: a certificate/key pair or a validation context. */
export const secretSchema = z.strictObject({
  name: z.string().check(z.minLength(1)),
  tls_certificate: z.optional(tlsCertificate),
  validation_context: z.optional(validationContext),
  ...notSupportedFields(["session_ticket_keys", "generic_secret"]),
}).check(
  z.refine((s) => (s.tls_certificate === undefined) !== (s.validation_context === undefined), {
    message: "Exactly one of tls_certificate, validation_context must be set",
  }),
);

/** The parsed form of a Secret. */
export type SecretConfig = z.output<typeof secretSchema>;

/** A secret with its DataSources read and checked: what TLS contexts use. */
export type ResolvedSecret =
  | {
    kind: "tls_certificate";
    certified: CertifiedKey;
    /** Where the chain came from, for /certs: the file name, or "<inline>". */
    path?: string;
  }
  | {
    kind: "validation_context";
    config: ValidationContextConfig;
    trustedCa: string | undefined;
    /** The `crl` DataSource's text (checked to parse). */
    crl?: string;
  };

/**
 * Reads a secret's DataSources and checks them (PEM parses, the key matches the certificate, the CA bundle
 * loads); throws a readable error. Needs the TLS runtime (`loadTlsRuntime()`).
 */
export function resolveSecret(s: SecretConfig): ResolvedSecret {
  if (s.tls_certificate) {
    const c = s.tls_certificate;
    try {
      return {
        kind: "tls_certificate",
        certified: validateCertifiedKey(readDataSource(c.certificate_chain), readDataSource(c.private_key)),
        path: c.certificate_chain.filename ?? "<inline>",
      };
    } catch (e) {
      throw new Error(`tls_certificate: ${(e as Error).message}`);
    }
  }
  const vc = s.validation_context!;
  let trustedCa: string | undefined;
  if (vc.trusted_ca) {
    try {
      trustedCa = readDataSource(vc.trusted_ca);
      validateTrustedCa(trustedCa);
    } catch (e) {
      throw new Error(`validation_context.trusted_ca: ${(e as Error).message}`);
    }
  }
  let crl: string | undefined;
  if (vc.crl) {
    try {
      crl = readDataSource(vc.crl);
      if (parsePemCrls(crl).length === 0) throw new Error("no PEM CRL found");
    } catch (e) {
      throw new Error(`validation_context.crl: ${(e as Error).message}`);
    }
  }
  return { kind: "validation_context", config: vc, trustedCa, crl };
}

function sameSecret(a: ResolvedSecret, b: ResolvedSecret): boolean {
  if (a.kind === "tls_certificate" && b.kind === "tls_certificate") {
    return a.certified.cert === b.certified.cert && a.certified.key === b.certified.key;
  }
  if (a.kind === "validation_context" && b.kind === "validation_context") {
    return a.trustedCa === b.trustedCa && a.crl === b.crl &&
      JSON.stringify(a.config) === JSON.stringify(b.config);
  }
  return false;
}

interface Entry {
  value: ResolvedSecret | undefined;
  version: string;
  /** Static (bootstrap) secrets are never replaced by SDS. */
  isStatic: boolean;
  watchers: Set<(s: ResolvedSecret) => void>;
  waiters: (() => void)[];
  /** The SDS initial fetch of this secret timed out (no value yet): TLS contexts stop waiting for it. */
  timedOut: boolean;
  /** Waiting for a value or the initial fetch timeout (`whenSettled`). */
  settleWaiters: (() => void)[];
}

/** Secrets of one event loop by name; see the file comment. */
export class SecretRegistry {
  readonly #entries = new Map<string, Entry>();

  #entry(name: string): Entry {
    let e = this.#entries.get(name);
    if (!e) {
      e = {
        value: undefined,
        version: "",
        isStatic: false,
        watchers: new Set(),
        waiters: [],
        timedOut: false,
        settleWaiters: [],
      };
      this.#entries.set(name, e);
    }
    return e;
  }

  /** The current value of `name`, or undefined before it arrived. */
  get(name: string): ResolvedSecret | undefined {
    return this.#entries.get(name)?.value;
  }

  /** The version of the value of `name` ("" for a static secret or none). */
  version(name: string): string {
    return this.#entries.get(name)?.version ?? "";
  }

  /** True when `name` is one of the bootstrap's static secrets. */
  isStatic(name: string): boolean {
    return this.#entries.get(name)?.isStatic ?? false;
  }

  /** Resolves once `name` has a value (at once when it has). */
  whenReady(name: string): Promise<void> {
    const e = this.#entry(name);
    if (e.value) return Promise.resolve();
    return new Promise((resolve) => e.waiters.push(resolve));
  }

  /**
   * Resolves once `name` has a value or its SDS initial fetch timed out (`markTimedOut`): what listener and
   * cluster warming wait for, as Envoy's SDS init target (ready on the first secret or initial_fetch_timeout).
   */
  whenSettled(name: string): Promise<void> {
    const e = this.#entry(name);
    if (e.value || e.timedOut) return Promise.resolve();
    return new Promise((resolve) => e.settleWaiters.push(resolve));
  }

  /** True when `name` has a value or its initial fetch timed out. */
  isSettled(name: string): boolean {
    const e = this.#entries.get(name);
    return e !== undefined && (e.value !== undefined || e.timedOut);
  }

  /**
   * The SDS initial_fetch_timeout of `name` passed without a value: whoever warms on it stops waiting (a listener
   * becomes active and fails handshakes, a cluster becomes active and fails connections until it arrives).
   * False when it has a value or timed out already.
   */
  markTimedOut(name: string): boolean {
    const e = this.#entry(name);
    if (e.value || e.timedOut) return false;
    e.timedOut = true;
    log.warn(
      `Secret "${name}" not received within its SDS initial_fetch_timeout; not waiting for it any more`,
    );
    for (const w of e.settleWaiters.splice(0)) w();
    return true;
  }

  /** Calls `cb` with each new value of `name` (not the current one); returns an unsubscribe. */
  watch(name: string, cb: (s: ResolvedSecret) => void): () => void {
    const e = this.#entry(name);
    e.watchers.add(cb);
    return () => e.watchers.delete(cb);
  }

  /**
   * Installs a value (already resolved); watchers run when it differs from the current one. Returns false
   * when nothing changed. A static secret cannot be replaced by a dynamic one (throws).
   */
  set(name: string, value: ResolvedSecret, version: string, isStatic = false): boolean {
    const e = this.#entry(name);
    if (e.isStatic && !isStatic) throw new Error(`Secret "${name}" is static and cannot be changed by SDS`);
    e.isStatic ||= isStatic;
    e.version = version;
    const prev = e.value;
    if (prev && sameSecret(prev, value)) return false;
    if (prev && prev.kind !== value.kind) {
      throw new Error(`Secret "${name}" changed kind (${prev.kind} to ${value.kind})`);
    }
    e.value = value;
    for (const w of e.waiters.splice(0)) w();
    for (const w of e.settleWaiters.splice(0)) w();
    for (const cb of e.watchers) {
      try {
        cb(value);
      } catch (err) {
        log.error(`Applying secret "${name}" failed: ${(err as Error).message}`);
      }
    }
    return true;
  }

  /** Resolves and installs the bootstrap's static secrets (throws on the first unusable one). */
  setStatic(secrets: readonly SecretConfig[]): void {
    secrets.forEach((s, i) => {
      let r: ResolvedSecret;
      try {
        r = resolveSecret(s);
      } catch (e) {
        throw new Error(`static_resources.secrets[${i}] "${s.name}": ${(e as Error).message}`);
      }
      this.set(s.name, r, "", true);
    });
  }

  /** Forgets every secret (tests). */
  clear(): void {
    this.#entries.clear();
  }
}

/** This event loop's registry (module state: one per thread, as workers load their own module graph). */
export const secrets: SecretRegistry = new SecretRegistry();

/** An SdsSecretConfig as far as warming cares: its name and, when fetched over SDS, the initial_fetch_timeout. */
export interface SecretRef {
  name: string;
  sds_config?: { initial_fetch_timeout?: number };
}

/**
 * Warming on SDS secrets (a listener's certificates, a cluster's validation context): `ready` resolves once every
 * named SDS secret arrived or its source's initial_fetch_timeout passed (then `registry.markTimedOut`, so every
 * context of this event loop waiting on it stops too). Each event loop arms its own timers (workers are not told
 * of the main thread's subscription timeouts); `close()` clears them. Secrets without sds_config (static ones)
 * are not waited for.
 */
export class SecretWait {
  readonly #timers: ReturnType<typeof setTimeout>[] = [];
  #ready: Promise<void> | undefined;

  constructor(refs: readonly SecretRef[], registry: SecretRegistry = secrets) {
    const pending = new Map<string, number>();
    for (const r of refs) {
      if (r.sds_config === undefined || registry.isSettled(r.name) || pending.has(r.name)) continue;
      pending.set(r.name, r.sds_config.initial_fetch_timeout ?? 15_000);
    }
    if (pending.size === 0) return;
    for (const [name, ms] of pending) {
      if (ms > 0) this.#timers.push(setTimeout(() => registry.markTimedOut(name), ms));
    }
    this.#ready = Promise.all([...pending.keys()].map((n) => registry.whenSettled(n))).then(() => {
      this.#ready = undefined;
      this.close();
    });
  }

  /** A promise while a secret is neither here nor timed out, else undefined. */
  get ready(): Promise<void> | undefined {
    return this.#ready;
  }

  /** Clears the timers (the promise then resolves only when the secrets arrive). */
  close(): void {
    for (const t of this.#timers.splice(0)) clearTimeout(t);
  }
}

/**
 * The certificates of a DownstreamTlsContext's `tls_certificate_sds_secret_configs`: available once every
 * named secret arrived; `onChange` runs after any of them changed (and when the set first became complete).
 */
export class SdsCertificates {
  readonly #names: readonly string[];
  readonly #registry: SecretRegistry;
  readonly #unwatch: (() => void)[] = [];
  readonly #wait: SecretWait;
  #current: CertifiedKey[] | undefined;

  /** Throws for a name without sds_config that is not a static secret (as Envoy: "Unknown static secret"). */
  constructor(
    configs: readonly { name: string; sds_config?: unknown }[],
    onChange: (certs: CertifiedKey[]) => void,
    registry: SecretRegistry = secrets,
  ) {
    this.#names = configs.map((c) => c.name);
    this.#registry = registry;
    for (const c of configs) {
      if (c.sds_config === undefined && !registry.isStatic(c.name)) {
        throw new Error(`Unknown static secret: ${c.name}`);
      }
      const v = registry.get(c.name);
      if (v && v.kind !== "tls_certificate") throw new Error(`Secret "${c.name}" is not a tls_certificate`);
    }
    this.#current = this.#collect();
    this.#wait = new SecretWait(configs as readonly SecretRef[], registry);
    for (const name of this.#names) {
      this.#unwatch.push(registry.watch(name, () => {
        const next = this.#collect();
        if (next === undefined) return;
        this.#current = next;
        onChange(next);
      }));
    }
  }

  #collect(): CertifiedKey[] | undefined {
    const out: CertifiedKey[] = [];
    for (const n of this.#names) {
      const v = this.#registry.get(n);
      if (v?.kind !== "tls_certificate") return undefined;
      out.push(v.certified);
    }
    return out;
  }

  /** The certificates, or undefined while a secret has not arrived. */
  get current(): CertifiedKey[] | undefined {
    return this.#current;
  }

  /** Resolves once every secret arrived. */
  async whenReady(): Promise<void> {
    await Promise.all(this.#names.map((n) => this.#registry.whenReady(n)));
  }

  /**
   * Listener warming: a promise while a secret has neither arrived nor timed out (its SDS
   * initial_fetch_timeout), else undefined.
   */
  settled(): Promise<void> | undefined {
    return this.#current === undefined ? this.#wait.ready : undefined;
  }

  /** Clears the initial_fetch_timeout timers (`close` does too). */
  stopWaiting(): void {
    this.#wait.close();
  }

  /** Names of the secrets not yet arrived. */
  missing(): string[] {
    return this.#names.filter((n) => this.#registry.get(n) === undefined);
  }

  /** Stops watching. */
  close(): void {
    this.#wait.close();
    for (const u of this.#unwatch.splice(0)) u();
  }
}

/**
 * Load-time checks of the bootstrap's `static_resources.secrets` (needs the TLS runtime): unusable pairs or CA
 * bundles, duplicate names.
 */
export function staticSecretIssues(list: readonly SecretConfig[] | undefined): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const seen = new Map<string, number>();
  (list ?? []).forEach((s, i) => {
    const at = ["static_resources", "secrets", i];
    const prev = seen.get(s.name);
    if (prev !== undefined) {
      issues.push(configError([...at, "name"], `Duplicate secret name "${s.name}" (also secrets[${prev}])`));
    } else seen.set(s.name, i);
    try {
      resolveSecret(s);
    } catch (e) {
      issues.push(configError(at, (e as Error).message));
    }
  });
  return issues;
}
