/**
 * The accept side of `envoy.transport_sockets.tls`: one DownstreamTls per TLS filter chain. It serves the
 * chain's certificates (chosen by SNI when there are several), announces its ALPN list, reloads certificates
 * when their files change, and terminates TLS in one of three ways:
 * - direct: the listener itself is a `Deno.listenTls` socket built from `listenOptions()` (one TLS chain);
 * - inspected: the listener read the ClientHello from plain TCP to pick the chain (SNI, ALPN); `terminate()`
 *   replays those bytes into a loopback TLS acceptor owned by this chain and splices the two sockets;
 * - node:tls (`usesNode`: client certificates are requested, or TLS 1.3 is disabled): `terminateNode()` runs the
 *   handshake over the inspected connection with node:tls, which can send a CertificateRequest and bound the
 *   versions (node_tls.ts); the peer is then checked against `validation()` by the accept path.
 */
import { Logger } from "../common/log.ts";
import { type CertifiedKey, CertWatcher, readDataSource, selectCertificate } from "./cert_store.ts";
import type { NodeAccepted, NodeTlsServer } from "./node_tls.ts";
import { loadNodeTlsModule } from "./node_tls_lazy.ts";
import { compilePeerValidation, type PeerValidation } from "./peer_verify.ts";
import {
  type ResolvedSecret,
  SdsCertificates,
  type SecretRef,
  type SecretRegistry,
  secrets as threadSecrets,
  SecretWait,
} from "./secret.ts";
import { type DownstreamTlsConfig, type SdsSecretConfig, tlsBounds } from "./tls_config.ts";
import type { ServerHelloSniffer } from "./tls_facts.ts";
import type { VersionBounds } from "./tls_params.ts";
import type { NetworkFilterFactory } from "../network/filter.ts";

const log = new Logger("connection");

// deno-lint-ignore no-explicit-any -- Deno's internal table is untyped
const internals = (Deno as any)[(Deno as any).internal] as { resolverSymbol: symbol };

/** Options for a DownstreamTls. */
export interface DownstreamTlsOptions {
  /** Certificate file polling interval (default 1000 ms). */
  reloadIntervalMs?: number;
  /** Where SDS and static secrets are looked up (default: this event loop's registry). */
  secrets?: SecretRegistry;
}

/** `Deno.listenTls` options (without address) serving `certs`; a resolver picks by SNI when there are several. */
export function tlsListenOptions(
  certs: readonly CertifiedKey[],
  alpn: readonly string[],
): Deno.TlsCertifiedKeyPem & { alpnProtocols?: string[] } {
  const base = alpn.length > 0 ? { alpnProtocols: [...alpn] } : {};
  if (certs.length === 1) return { ...base, cert: certs[0].cert, key: certs[0].key };
  const pick = (sni: string) => {
    const c = selectCertificate(certs, sni);
    return { cert: c.cert, key: c.key };
  };
  // the unstable SNI resolver of Deno.listenTls (cert and key are then ignored)
  return { ...base, [internals.resolverSymbol]: pick } as unknown as Deno.TlsCertifiedKeyPem;
}

/** A loopback TLS acceptor: connections made to it are matched to their caller by local port. */
class LoopbackAcceptor {
  readonly listener: Deno.TlsListener;
  readonly port: number;
  #waiting = new Map<number, (c: Deno.TlsConn) => void>();
  #arrived = new Map<number, Deno.TlsConn>();
  #timers = new Set<ReturnType<typeof setTimeout>>();
  #closed = false;

  constructor(certs: readonly CertifiedKey[], alpn: readonly string[]) {
    this.listener = Deno.listenTls({ hostname: "127.0.0.1", port: 0, ...tlsListenOptions(certs, alpn) });
    this.port = (this.listener.addr as Deno.NetAddr).port;
    this.#loop();
  }

  async #loop(): Promise<void> {
    for (;;) {
      let c: Deno.TlsConn;
      try {
        c = await this.listener.accept();
      } catch {
        if (this.#closed) return;
        continue;
      }
      const port = c.remoteAddr.port;
      const w = this.#waiting.get(port);
      if (w) {
        this.#waiting.delete(port);
        w(c);
      } else {
        this.#arrived.set(port, c);
        // a stranger (not our splice) is closed if nobody claims it soon
        const t = setTimeout(() => {
          this.#timers.delete(t);
          if (this.#arrived.get(port) === c) {
            this.#arrived.delete(port);
            safeClose(c);
          }
        }, 1000);
        this.#timers.add(t);
      }
    }
  }

  /** The accepted TLS side of the loopback connection whose client port is `port`. */
  take(port: number): Promise<Deno.TlsConn> {
    const c = this.#arrived.get(port);
    if (c) {
      this.#arrived.delete(port);
      return Promise.resolve(c);
    }
    return new Promise((resolve) => this.#waiting.set(port, resolve));
  }

  close(): void {
    this.#closed = true;
    safeClose(this.listener);
    for (const c of this.#arrived.values()) safeClose(c);
    this.#arrived.clear();
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
  }
}

function safeClose(c: { close(): void }): void {
  try {
    c.close();
  } catch {
    // already closed
  }
}

async function writeAll(c: Deno.Conn, b: Uint8Array): Promise<void> {
  let o = 0;
  while (o < b.length) o += await c.write(b.subarray(o));
}

/**
 * Copies src to dst until EOF or error; half-closes dst at EOF. Returns true when it ended with EOF. `sniff`
 * sees the first bytes (the server's ServerHello) before they are forwarded.
 */
async function pump(
  src: Deno.Conn,
  dst: Deno.Conn,
  prefix: Uint8Array | null,
  sniff: ServerHelloSniffer | undefined,
): Promise<boolean> {
  const buf = new Uint8Array(64 * 1024);
  try {
    if (prefix !== null && prefix.length > 0) await writeAll(dst, prefix);
    for (;;) {
      const n = await src.read(buf);
      if (n === null) break;
      if (sniff !== undefined && sniff.wanting) sniff.feed(buf.subarray(0, n));
      await writeAll(dst, buf.subarray(0, n));
    }
    await dst.closeWrite();
    return true;
  } catch {
    return false;
  }
}

/** Joins the client socket and the loopback socket both ways; closes both when either side fails or both end. */
async function splice(
  outer: Deno.Conn,
  loop: Deno.Conn,
  prefix: Uint8Array,
  sniff: ServerHelloSniffer | undefined,
): Promise<void> {
  let pending = 2;
  const done = (ok: boolean) => {
    if (!ok || --pending === 0) {
      safeClose(outer);
      safeClose(loop);
    }
  };
  pump(outer, loop, prefix, undefined).then(done);
  pump(loop, outer, null, sniff).then(done);
  await Promise.resolve();
}

/**
 * The TLS side of one filter chain: certificates (from files or inline, reloaded on change, or from secrets:
 * SDS or static), ALPN, client certificate validation, version bounds, and the acceptor. Chains that validate
 * client certificates or cap the version at TLS 1.2 are served by node:tls (`usesNode`); the rest by Deno's TLS.
 */
export class DownstreamTls {
  readonly alpn: readonly string[];
  /** The TLS versions served (tls_params; TLS 1.2 to 1.3 by default). */
  readonly bounds: VersionBounds;
  /** Handshakes run on node:tls (client certificates are requested, or TLS 1.3 is disabled). */
  readonly usesNode: boolean;
  /**
   * Connections must be inspected (ClientHello read from plain TCP) rather than accepted by Deno's TLS listener:
   * node:tls chains, and a TLS 1.3 minimum (a client not offering TLS 1.3 is refused from its ClientHello).
   */
  readonly needsInspection: boolean;
  readonly #watcher: CertWatcher | undefined;
  readonly #sds: SdsCertificates | undefined;
  readonly #requireClientCert: boolean;
  /** The inline validation_context, compiled (undefined without one or with an SDS one). */
  readonly #inlineValidation: PeerValidation | undefined;
  /** validation_context_sds_secret_config. */
  readonly #vcSecret: SdsSecretConfig | undefined;
  readonly #registry: SecretRegistry;
  readonly #vcWait: SecretWait | undefined;
  #vcUnwatch: (() => void) | undefined;
  #vcSeen: ResolvedSecret | undefined;
  #vcCompiled: PeerValidation | undefined;
  #node: {
    certs: readonly CertifiedKey[];
    validation: PeerValidation | undefined;
    server: Promise<NodeTlsServer>;
  } | undefined;
  #acceptor: LoopbackAcceptor | undefined;
  #rotate = new Set<() => void>();
  #retiring = new Map<LoopbackAcceptor, ReturnType<typeof setTimeout>>();
  #closed = false;

  /**
   * Loads the certificates (throws when unusable) and starts watching their files, or watches the named
   * secrets (throws for an unknown static secret); an SDS secret not yet arrived makes it wait (`whenReady`).
   * Reads the validation context's trusted CA and CRL (throws when unreadable).
   */
  constructor(config: DownstreamTlsConfig, opts: DownstreamTlsOptions = {}) {
    const common = config.common_tls_context;
    this.alpn = common.alpn_protocols;
    this.bounds = tlsBounds(common.tls_params);
    this.#requireClientCert = config.require_client_certificate;
    this.#registry = opts.secrets ?? threadSecrets;
    const vc = common.validation_context;
    this.#inlineValidation = vc === undefined ? undefined : compilePeerValidation(
      vc,
      vc.trusted_ca ? readDataSource(vc.trusted_ca) : undefined,
      vc.crl ? readDataSource(vc.crl) : undefined,
      config.require_client_certificate,
    );
    this.#vcSecret = common.validation_context_sds_secret_config;
    if (this.#vcSecret !== undefined) {
      const name = this.#vcSecret.name;
      if (this.#vcSecret.sds_config === undefined && !this.#registry.isStatic(name)) {
        throw new Error(`Unknown static secret: ${name}`);
      }
      this.#vcWait = new SecretWait([this.#vcSecret as SecretRef], this.#registry);
      // a new validation context applies to the next handshakes
      this.#vcUnwatch = this.#registry.watch(name, () => {
        this.#node = undefined;
      });
    }
    this.usesNode = this.#vcSecret !== undefined || (this.#inlineValidation?.request ?? false) ||
      this.bounds.max === 2;
    this.needsInspection = this.usesNode || this.bounds.min === 3;
    if (common.tls_certificate_sds_secret_configs.length > 0) {
      this.#sds = new SdsCertificates(common.tls_certificate_sds_secret_configs, () => {
        log.info(
          `Serving secrets ${common.tls_certificate_sds_secret_configs.map((c) => c.name).join(", ")}`,
        );
        this.#rotated();
      }, opts.secrets);
    } else {
      this.#watcher = new CertWatcher(common.tls_certificates, {
        intervalMs: opts.reloadIntervalMs,
        onChange: () => this.#rotated(),
      });
    }
  }

  /** The certificates currently served (none while an SDS secret has not arrived). */
  get certificates(): readonly CertifiedKey[] {
    return this.#current() ?? [];
  }

  #current(): CertifiedKey[] | undefined {
    return this.#watcher ? this.#watcher.current : this.#sds!.current;
  }

  /**
   * Listener warming: a promise while a secret named by the context has neither arrived (SDS) nor timed out
   * (its source's initial_fetch_timeout), else undefined. Handshakes started meanwhile (a static listener binds
   * at once) wait for it; after a timeout they fail (no certificate), as Envoy resets such connections.
   */
  whenReady(): Promise<void> | undefined {
    const certs = this.#current() === undefined ? this.#sds!.settled() : undefined;
    const vc = this.#vcWait?.ready;
    if (vc === undefined) return certs;
    return certs === undefined ? vc : Promise.all([certs, vc]).then(() => {});
  }

  /** Clears the SDS initial_fetch_timeout timers (the listener version is gone). */
  stopWaiting(): void {
    this.#sds?.stopWaiting();
    this.#vcWait?.close();
  }

  /**
   * The client certificate validation in force: the inline validation_context, or the current SDS one
   * (recompiled when it changes; throws while it has not arrived). Undefined without a validation context.
   */
  validation(): PeerValidation | undefined {
    if (this.#vcSecret === undefined) return this.#inlineValidation;
    const name = this.#vcSecret.name;
    const v = this.#registry.get(name);
    if (v === undefined) throw new Error(`Secret "${name}" not yet received from SDS`);
    if (v.kind !== "validation_context") throw new Error(`Secret "${name}" is not a validation_context`);
    if (v !== this.#vcSeen || this.#vcCompiled === undefined) {
      this.#vcCompiled = compilePeerValidation(v.config, v.trustedCa, v.crl, this.#requireClientCert);
      this.#vcSeen = v;
    }
    return this.#vcCompiled;
  }

  /** The certificate served for `sni` (the only one, or Envoy's pick by name). */
  servedCertificate(sni: string): CertifiedKey {
    const certs = this.#current();
    if (certs === undefined) throw new Error(`Secrets not yet received: ${this.#sds!.missing().join(", ")}`);
    return selectCertificate(certs, sni);
  }

  /**
   * Options for `Deno.listenTls` serving the current certificates (direct mode). Before SDS secrets arrived:
   * a resolver that holds each handshake until they do (the listener rebinds when they arrive, as on rotation).
   */
  listenOptions(): Deno.TlsCertifiedKeyPem & { alpnProtocols?: string[] } {
    const certs = this.#current();
    if (certs !== undefined) return tlsListenOptions(certs, this.alpn);
    const base = this.alpn.length > 0 ? { alpnProtocols: [...this.alpn] } : {};
    const pick = async (sni: string) => {
      await this.whenReady(); // then servedCertificate throws while the secret is missing (timed out)
      const c = this.servedCertificate(sni);
      return { cert: c.cert, key: c.key };
    };
    return { ...base, [internals.resolverSymbol]: pick } as unknown as Deno.TlsCertifiedKeyPem;
  }

  /** Registers a callback run after a certificate rotation (direct-mode listeners rebind); returns an unsubscribe. */
  onRotate(cb: () => void): () => void {
    this.#rotate.add(cb);
    return () => this.#rotate.delete(cb);
  }

  /** Checks the certificate files now (tests); true when new certificates were installed. */
  reloadNow(): boolean {
    return this.#watcher?.reloadIfChanged() ?? false;
  }

  /**
   * Terminates TLS for a plain connection whose first bytes (`prefix`, the ClientHello) were already read:
   * runs once per connection in inspected mode; resolves to the TLS side, which owns the connection from then.
   * `sniff` reads the ServerHello (version, cipher, session id) as it passes.
   */
  async terminate(outer: Deno.Conn, prefix: Uint8Array, sniff?: ServerHelloSniffer): Promise<Deno.TlsConn> {
    if (this.#closed) throw new Error("TLS context closed");
    const waiting = this.whenReady();
    if (waiting !== undefined) await waiting; // bounded by the listener_filters_timeout
    if (this.#closed) throw new Error("TLS context closed");
    if (this.#current() === undefined) {
      throw new Error(`Secrets not supplied by SDS: ${this.#sds!.missing().join(", ")}`);
    }
    const acc = this.#acceptor ??= new LoopbackAcceptor(this.#current()!, this.alpn);
    const loop = await Deno.connect({ hostname: "127.0.0.1", port: acc.port });
    try {
      loop.setNoDelay(true);
    } catch {
      // closed already
    }
    const tls = await acc.take((loop.localAddr as Deno.NetAddr).port);
    await splice(outer, loop, prefix, sniff);
    return tls;
  }

  /**
   * node:tls chains: runs the handshake for a plain connection whose ClientHello (`prefix`) was already read,
   * requesting a client certificate as the validation context says. Resolves to the TLS connection (which owns
   * `outer` from then) and the validation to apply to its peer; rejects when the handshake fails.
   */
  async terminateNode(
    outer: Deno.Conn,
    prefix: Uint8Array,
    sniff?: ServerHelloSniffer,
  ): Promise<{ accepted: NodeAccepted; validation: PeerValidation | undefined }> {
    if (this.#closed) throw new Error("TLS context closed");
    const waiting = this.whenReady();
    if (waiting !== undefined) await waiting; // bounded by the listener_filters_timeout
    if (this.#closed) throw new Error("TLS context closed");
    const certs = this.#current();
    if (certs === undefined) {
      throw new Error(`Secrets not supplied by SDS: ${this.#sds!.missing().join(", ")}`);
    }
    const validation = this.validation();
    let node = this.#node;
    if (node === undefined || node.certs !== certs || node.validation !== validation) {
      node = {
        certs,
        validation,
        server: loadNodeTlsModule().then((m) =>
          m.NodeTlsServer.create({
            certs,
            alpn: this.alpn,
            bounds: this.bounds,
            ca: validation?.ca,
            requestCert: validation?.request ?? false,
          })
        ),
      };
      this.#node = node;
    }
    const server = await node.server;
    return { accepted: await server.accept(outer, prefix, sniff), validation };
  }

  #rotated(): void {
    this.#node = undefined;
    const old = this.#acceptor;
    this.#acceptor = undefined;
    // connects already aimed at the old acceptor get a moment to land
    if (old) {
      this.#retiring.set(
        old,
        setTimeout(() => {
          this.#retiring.delete(old);
          old.close();
        }, 2000),
      );
    }
    for (const cb of this.#rotate) {
      try {
        cb();
      } catch (e) {
        log.error(`Rebinding after certificate rotation failed: ${(e as Error).message}`);
      }
    }
  }

  /** Stops watching and closes the loopback acceptor. */
  close(): void {
    this.#closed = true;
    this.#watcher?.close();
    this.#sds?.close();
    this.#vcWait?.close();
    this.#vcUnwatch?.();
    this.#vcUnwatch = undefined;
    this.#node = undefined;
    this.#acceptor?.close();
    this.#acceptor = undefined;
    for (const [a, t] of this.#retiring) {
      clearTimeout(t);
      a.close();
    }
    this.#retiring.clear();
  }
}

/**
 * A stand-in filter factory that only makes a listener warm (ListenerManager waits on every factory's
 * `whenReady`) until the chain's SDS secrets arrived, as Envoy's listener warming waits for secrets. It is
 * never part of a filter chain.
 */
export function tlsWarmingFactory(tls: DownstreamTls): NetworkFilterFactory {
  return {
    terminal: false,
    createFilter() {
      throw new Error("tlsWarmingFactory makes no filters");
    },
    whenReady: () => tls.whenReady(),
    // the listener version was dropped or retired: its initial_fetch_timeout timers go (nothing else: a newer
    // version may have taken over a socket bound with this context)
    close: () => tls.stopWaiting(),
  };
}
