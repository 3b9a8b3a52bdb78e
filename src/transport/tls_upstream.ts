/**
 * The connect side of `envoy.transport_sockets.tls` (UpstreamTlsContext): a ConnectFn for a cluster's pool
 * that opens TCP, runs the TLS handshake with the configured SNI, trusted CA, ALPN list and client certificate,
 * then checks the peer certificate as Envoy's validator does (`match_typed_subject_alt_names`, certificate and
 * SPKI pins, revocation lists), counting `cluster.<name>.ssl.*`. Deno's TLS runs it (client certificates through
 * Deno.connectTls); contexts with version bounds, CRLs or ACCEPT_UNTRUSTED run on node:tls (node_tls.ts).
 */
import type { Scope } from "../stats/store.ts";
import type { ConnectFn } from "../upstream/pool.ts";
import { type CertifiedKey, CertWatcher, readDataSource, tlsCrypto } from "./cert_store.ts";
import { checkRevocation } from "./crl.ts";
import { loadNodeTlsModule } from "./node_tls_lazy.ts";
import { compilePeerValidation, type PeerCertificate, type PeerValidation } from "./peer_verify.ts";
import {
  type ResolvedSecret,
  type SecretRef,
  type SecretRegistry,
  secrets as threadSecrets,
  SecretWait,
} from "./secret.ts";
import { type SslStats, sslStatsFor, type VerifyFailure } from "./ssl_stats.ts";
import { tlsBounds, type UpstreamTlsConfig } from "./tls_config.ts";
import { DEFAULT_BOUNDS, type VersionBounds } from "./tls_params.ts";

export { compileSanCheck, compileStringMatcher, type SanCheck } from "./peer_verify.ts";

// deno-lint-ignore no-explicit-any -- Deno's internal table is untyped
const internals = (Deno as any)[(Deno as any).internal] as {
  getPeerCertificate: symbol;
  serverNameSymbol: symbol;
};

const negotiated = new WeakMap<Deno.Conn, string>();

/** The ALPN protocol negotiated on an upstream TLS connection ("" for none or plain TCP); per connection. */
export function negotiatedAlpn(conn: Deno.Conn): string {
  return negotiated.get(conn) ?? "";
}

/** Settings compiled from an UpstreamTlsContext (and its secrets). */
interface UpstreamTlsSettings {
  sni: string;
  alpn: string[] | undefined;
  bounds: VersionBounds;
  validation: PeerValidation;
  /** The handshake needs node:tls (version bounds, CRLs, ACCEPT_UNTRUSTED). */
  node: boolean;
}

/** Compiles the validation side (config or secret time; throws when the CA or CRL cannot be read or parsed). */
function compileSettings(
  config: UpstreamTlsConfig,
  trustedCa: string | undefined,
  crl: string | undefined,
  vc: UpstreamTlsConfig["common_tls_context"]["validation_context"],
): UpstreamTlsSettings {
  const ctx = config.common_tls_context;
  const bounds = tlsBounds(ctx.tls_params);
  const validation = compilePeerValidation(vc, trustedCa, crl);
  const defaultBounds = bounds.min === DEFAULT_BOUNDS.min && bounds.max === DEFAULT_BOUNDS.max;
  return {
    sni: config.sni ?? "",
    alpn: ctx.alpn_protocols.length > 0 ? [...ctx.alpn_protocols] : undefined,
    bounds,
    validation,
    node: !defaultBounds || validation.crls.length > 0 || validation.acceptUntrusted,
  };
}

/**
 * The settings of a context whose validation context is a secret (`validation_context_sds_secret_config`),
 * recompiled when the secret changes: each new connection uses the latest. A cluster warms until it arrived
 * (`upstreamSecretWait`); once its initial_fetch_timeout passed without it, connections fail with a transport
 * failure naming it (Envoy: the cluster is active and its requests fail).
 */
function sdsSettings(
  config: UpstreamTlsConfig,
  name: string,
  hasSource: boolean,
  registry: SecretRegistry,
): () => UpstreamTlsSettings {
  if (!hasSource && !registry.isStatic(name)) throw new Error(`Unknown static secret: ${name}`);
  let seen: ResolvedSecret | undefined;
  let compiled: UpstreamTlsSettings | undefined;
  return () => {
    const v = registry.get(name);
    if (v === undefined) {
      throw new Error(`TLS_error:|secret "${name}" not yet received from SDS:TLS_error_end`);
    }
    if (v.kind !== "validation_context") {
      throw new Error(`TLS_error:|secret "${name}" is not a validation_context:TLS_error_end`);
    }
    if (v !== seen || compiled === undefined) {
      compiled = compileSettings(config, v.trustedCa, v.crl, v.config);
      seen = v;
    }
    return compiled;
  };
}

/**
 * The client certificate of a context: `tls_certificates[0]` (files re-checked at most once a second, on
 * connect) or `tls_certificate_sds_secret_configs[0]` (the current secret); undefined without one.
 */
function clientCertificate(
  config: UpstreamTlsConfig,
  registry: SecretRegistry,
): (() => CertifiedKey) | undefined {
  const ctx = config.common_tls_context;
  if (ctx.tls_certificates.length > 0) {
    const w = new CertWatcher(ctx.tls_certificates.slice(0, 1), { poll: false, onChange: () => {} });
    let checked = Date.now();
    return () => {
      const now = Date.now();
      if (now - checked >= 1000) {
        checked = now;
        w.reloadIfChanged();
      }
      return w.current[0];
    };
  }
  const ref = ctx.tls_certificate_sds_secret_configs[0];
  if (ref === undefined) return undefined;
  if (ref.sds_config === undefined && !registry.isStatic(ref.name)) {
    throw new Error(`Unknown static secret: ${ref.name}`);
  }
  return () => {
    const v = registry.get(ref.name);
    if (v === undefined) {
      throw new Error(`TLS_error:|secret "${ref.name}" not yet received from SDS:TLS_error_end`);
    }
    if (v.kind !== "tls_certificate") {
      throw new Error(`TLS_error:|secret "${ref.name}" is not a tls_certificate:TLS_error_end`);
    }
    return v.certified;
  };
}

/**
 * Cluster warming on SDS: a SecretWait for the secrets an UpstreamTlsContext fetches over SDS (its
 * validation_context_sds_secret_config and client certificate), or undefined when it fetches none.
 */
export function upstreamSecretWait(
  config: UpstreamTlsConfig,
  registry: SecretRegistry = threadSecrets,
): SecretWait | undefined {
  const ctx = config.common_tls_context;
  const refs = [ctx.validation_context_sds_secret_config, ...ctx.tls_certificate_sds_secret_configs]
    .filter((r) => r?.sds_config !== undefined) as SecretRef[];
  if (refs.length === 0) return undefined;
  return new SecretWait(refs, registry);
}

function safeClose(c: { close(): void }): void {
  try {
    c.close();
  } catch {
    // already closed
  }
}

/** A transport failure reason in Envoy's shape, with the ssl.* failure it counts. */
class TlsFailure extends Error {
  constructor(readonly why: VerifyFailure | "connection_error", detail: string) {
    super(`TLS_error:|${detail}:TLS_error_end`);
  }
}

const VERIFY_MESSAGES: Record<VerifyFailure, string> = {
  no_cert: "CERTIFICATE_VERIFY_FAILED: no certificate",
  error: "CERTIFICATE_VERIFY_FAILED",
  san: "CERTIFICATE_VERIFY_FAILED: no subject alternative name matched",
  cert_hash: "CERTIFICATE_VERIFY_FAILED: certificate hash mismatch",
};

/** The checks after the runtime's chain verification (revocation, SANs, pins); the failure or undefined. */
function checkPeer(v: PeerValidation, peer: PeerCertificate | null): VerifyFailure | undefined {
  if (peer === null || peer.chain.length === 0) return "no_cert";
  if (v.crls.length > 0) {
    try {
      if (checkRevocation(peer.chain, v.crls, v.leafOnlyCrl, Date.now()) !== undefined) return "error";
    } catch {
      return "error";
    }
  }
  if (v.san !== undefined && !v.san(peer.subjectAltName)) return "san";
  if (v.hashes.size > 0 || v.spkis.size > 0) {
    // hashes need node:crypto, loaded with the TLS runtime
    const c = tlsCryptoOrUndefined();
    if (c === undefined) return "cert_hash";
    const leaf = peer.chain[0];
    const hash = c.createHash("sha256").update(leaf).digest("hex");
    const spki = c.createHash("sha256").update(
      new c.X509Certificate(leaf).publicKey.export({ type: "spki", format: "der" }) as Uint8Array,
    ).digest("hex");
    if (!v.hashes.has(hash) && !v.spkis.has(spki)) return "cert_hash";
  }
  return undefined;
}

/** The ssl.* failure a runtime handshake error stands for. */
function handshakeFailure(message: string): VerifyFailure | "connection_error" {
  return VERIFY_ERROR_RE.test(message) ? "error" : "connection_error";
}

/** rustls' "invalid peer certificate: UnknownIssuer" and node's verify errors (not alerts the peer sent). */
const VERIFY_ERROR_RE =
  /invalid peer certificate|unable to (verify|get)|self[- ]signed|certificate has expired|UNABLE_TO/i;

/** Options of createTlsConnect. */
export interface TlsConnectOptions {
  /** Opens the TCP connection TLS runs over (default Deno.connect). */
  tcpConnect?: ConnectFn;
  /** Where SDS and static secrets are looked up (default: this event loop's registry). */
  registry?: SecretRegistry;
  /** The cluster's scope, for `ssl.*` (none: not counted). */
  scope?: Scope;
}

/**
 * A ConnectFn speaking TLS (built once per cluster): TCP connect, handshake, peer checks. Rejects with an
 * Envoy-like transport failure reason, which the router reports in its 503 UF reply.
 */
export function createTlsConnect(
  config: UpstreamTlsConfig,
  tcpConnect?: ConnectFn,
  registry: SecretRegistry = threadSecrets,
  opts: TlsConnectOptions = {},
): ConnectFn {
  const secrets = opts.registry ?? registry;
  const tcp = opts.tcpConnect ?? tcpConnect;
  const ctx = config.common_tls_context;
  const sds = ctx.validation_context_sds_secret_config;
  const vc = ctx.validation_context;
  const fixed = sds ? undefined : compileSettings(
    config,
    vc?.trusted_ca ? readDataSource(vc.trusted_ca) : undefined,
    vc?.crl ? readDataSource(vc.crl) : undefined,
    vc,
  );
  const current = sds ? sdsSettings(config, sds.name, sds.sds_config !== undefined, secrets) : () => fixed!;
  const cert = clientCertificate(config, secrets);
  const stats = opts.scope ? sslStatsFor(opts.scope) : undefined;
  return async (o) => {
    let conn: Deno.Conn;
    try {
      const s = current();
      const c = cert?.();
      conn = s.node || (c !== undefined && tcp !== undefined)
        ? await connectNode(s, c, o, tcp, stats)
        : await connectDeno(s, c, o, tcp, stats);
    } catch (e) {
      if (e instanceof TlsFailure) {
        if (e.why === "connection_error") stats?.connection_error.inc();
        else stats?.verifyFailed(e.why);
      }
      throw e;
    }
    return conn;
  };
}

/** Deno's TLS: startTls over the pool's TCP connection, or connectTls when a client certificate is sent. */
async function connectDeno(
  s: UpstreamTlsSettings,
  cert: CertifiedKey | undefined,
  o: Parameters<ConnectFn>[0],
  tcpConnect: ConnectFn | undefined,
  stats: SslStats | undefined,
): Promise<Deno.Conn> {
  const caCerts = s.validation.ca !== undefined ? [s.validation.ca] : [];
  let tcp: Deno.Conn | undefined;
  let tls: Deno.TlsConn | undefined;
  const abort = () => safeClose(tls ?? tcp ?? { close() {} });
  o.signal?.addEventListener("abort", abort, { once: true });
  try {
    if (cert !== undefined) {
      // Deno.startTls takes no client certificate; connectTls does (and opens the TCP connection itself)
      tls = await Deno.connectTls({
        hostname: o.hostname,
        port: o.port,
        caCerts,
        alpnProtocols: s.alpn,
        cert: cert.cert,
        key: cert.key,
        unsafelyDisableHostnameVerification: true,
        // SNI: `sni`, else none for an IP address (as Envoy without `sni`)
        ...(s.sni !== "" ? { [internals.serverNameSymbol]: s.sni } : {}),
      } as Deno.ConnectTlsOptions);
      if (o.signal?.aborted) throw new Error("Connect aborted");
    } else {
      tcp = await (tcpConnect ?? ((x) => Deno.connect(x)))(o);
      tls = await Deno.startTls(tcp as Deno.TcpConn, {
        // an IP address here sends no SNI, as Envoy without `sni`
        hostname: s.sni !== "" ? s.sni : o.hostname,
        caCerts,
        alpnProtocols: s.alpn,
        unsafelyDisableHostnameVerification: true,
      });
    }
    let info: Deno.TlsHandshakeInfo;
    try {
      info = await tls.handshake();
    } catch (e) {
      const m = (e as Error).message;
      throw new TlsFailure(handshakeFailure(m), m);
    }
    const v = s.validation;
    if (v.san !== undefined || v.hashes.size > 0 || v.spkis.size > 0) {
      // deno-lint-ignore no-explicit-any -- internal accessor of the runtime
      const pc = (tls as any)[internals.getPeerCertificate](true) as
        | { subjectaltname?: string; raw?: Uint8Array }
        | null;
      const peer = pc?.raw
        ? { chain: [pc.raw], subjectAltName: pc.subjectaltname ?? "", trusted: true }
        : null;
      const failure = checkPeer(v, peer);
      if (failure !== undefined) throw new TlsFailure(failure, VERIFY_MESSAGES[failure]);
    }
    stats?.handshakeDone({ version: "", cipher: "", curve: "", resumed: false, peerCertificate: true });
    negotiated.set(tls, info.alpnProtocol ?? "");
    return tls;
  } catch (e) {
    safeClose(tls ?? tcp ?? { close() {} });
    throw e;
  } finally {
    o.signal?.removeEventListener("abort", abort);
  }
}

/** node:tls: version bounds, revocation lists, ACCEPT_UNTRUSTED (and client certificates over a custom TCP). */
async function connectNode(
  s: UpstreamTlsSettings,
  cert: CertifiedKey | undefined,
  o: Parameters<ConnectFn>[0],
  tcpConnect: ConnectFn | undefined,
  stats: SslStats | undefined,
): Promise<Deno.Conn> {
  const v = s.validation;
  const tcp = tcpConnect !== undefined ? await tcpConnect(o) : undefined;
  const { nodeConnect, peerOf, verifyErrorOf } = await loadNodeTlsModule();
  let accepted;
  try {
    accepted = await nodeConnect({
      hostname: o.hostname,
      port: o.port,
      // no SNI for an IP address, as Envoy without `sni`
      servername: s.sni !== "" ? s.sni : undefined,
      ca: v.ca,
      cert,
      alpn: s.alpn,
      bounds: s.bounds,
      rejectUnauthorized: !v.acceptUntrusted,
      tcp,
      signal: o.signal,
    });
  } catch (e) {
    const m = (e as Error).message;
    throw new TlsFailure(handshakeFailure(m), m);
  }
  const { conn, socket } = accepted;
  const peer = peerOf(socket, verifyErrorOf(socket));
  const failure = checkPeer(v, peer) ?? (peer !== null && !peer.trusted ? "error" : undefined);
  if (failure !== undefined) {
    if (!v.acceptUntrusted) {
      conn.close();
      throw new TlsFailure(failure, VERIFY_MESSAGES[failure]);
    }
    stats?.verifyFailed(failure);
  }
  stats?.handshakeDone({
    version: socket.getProtocol() ?? "",
    cipher: socket.getCipher()?.name ?? "",
    curve: "",
    resumed: socket.isSessionReused(),
    peerCertificate: peer !== null,
  });
  const c = conn.asConn();
  negotiated.set(c, typeof socket.alpnProtocol === "string" ? socket.alpnProtocol : "");
  return c;
}

function tlsCryptoOrUndefined(): typeof import("node:crypto") | undefined {
  try {
    return tlsCrypto();
  } catch {
    return undefined;
  }
}
