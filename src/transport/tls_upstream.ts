/**
 * The connect side of `envoy.transport_sockets.tls` (UpstreamTlsContext): a ConnectFn for a cluster's pool
 * that opens TCP, runs the TLS handshake with the configured SNI, trusted CA and ALPN list, then checks the
 * peer certificate's subject alternative names as Envoy's `match_typed_subject_alt_names` does.
 */
import type { StringMatcherConfig } from "../config/common.ts";
import type { ConnectFn } from "../upstream/pool.ts";
import { readDataSource } from "./cert_store.ts";
import {
  type ResolvedSecret,
  type SecretRef,
  type SecretRegistry,
  secrets as threadSecrets,
  SecretWait,
} from "./secret.ts";
import type { SanMatcherConfig, UpstreamTlsConfig } from "./tls_config.ts";

// deno-lint-ignore no-explicit-any -- Deno's internal table is untyped
const internals = (Deno as any)[(Deno as any).internal] as { getPeerCertificate: symbol };

/** The SAN kinds as printed by the runtime's peer certificate ("DNS:", "URI:", "email:", "IP Address:"). */
const SAN_PREFIX: Record<SanMatcherConfig["san_type"], string> = {
  DNS: "DNS:",
  URI: "URI:",
  EMAIL: "email:",
  IP_ADDRESS: "IP Address:",
};

const negotiated = new WeakMap<Deno.Conn, string>();

/** The ALPN protocol negotiated on an upstream TLS connection ("" for none or plain TCP); per connection. */
export function negotiatedAlpn(conn: Deno.Conn): string {
  return negotiated.get(conn) ?? "";
}

/** Compiles an Envoy StringMatcher into a predicate (config time). */
export function compileStringMatcher(m: StringMatcherConfig, dnsExact = false): (v: string) => boolean {
  const ic = m.ignore_case === true;
  const norm = (s: string) => (ic ? s.toLowerCase() : s);
  if (m.exact !== undefined) {
    const want = norm(m.exact);
    if (!dnsExact) return (v) => norm(v) === want;
    // a wildcard DNS SAN ("*.example.com") matches one label in its place, as Envoy's dNSNameMatch
    return (v) => {
      const s = norm(v);
      if (s === want) return true;
      if (!s.startsWith("*.")) return false;
      const dot = want.indexOf(".");
      return dot > 0 && want.slice(dot) === s.slice(1);
    };
  }
  if (m.prefix !== undefined) {
    const p = norm(m.prefix);
    return (v) => norm(v).startsWith(p);
  }
  if (m.suffix !== undefined) {
    const p = norm(m.suffix);
    return (v) => norm(v).endsWith(p);
  }
  if (m.contains !== undefined) {
    const p = norm(m.contains);
    return (v) => norm(v).includes(p);
  }
  const re = new RegExp(`^(?:${m.safe_regex!.regex})$`, ic ? "i" : "");
  return (v) => re.test(v);
}

/** A compiled SAN check: true when any configured matcher accepts one of the certificate's SANs. */
export type SanCheck = (subjectAltName: string) => boolean;

/** Compiles `match_typed_subject_alt_names` (and the deprecated untyped list); undefined when empty. */
export function compileSanCheck(
  typed: readonly SanMatcherConfig[],
  untyped: readonly StringMatcherConfig[] = [],
): SanCheck | undefined {
  if (typed.length === 0 && untyped.length === 0) return undefined;
  const checks: { prefix: string | null; test: (v: string) => boolean }[] = [
    ...typed.map((t) => ({
      prefix: SAN_PREFIX[t.san_type],
      test: compileStringMatcher(t.matcher, t.san_type === "DNS"),
    })),
    ...untyped.map((m) => ({ prefix: null, test: compileStringMatcher(m, true) })),
  ];
  return (sanText) => {
    for (const part of sanText.split(", ")) {
      const colon = part.indexOf(":");
      if (colon < 0) continue;
      for (const c of checks) {
        if (c.prefix === null) {
          if (c.test(part.slice(colon + 1))) return true;
        } else if (part.startsWith(c.prefix) && c.test(part.slice(c.prefix.length))) {
          return true;
        }
      }
    }
    return false;
  };
}

/** Settings compiled from an UpstreamTlsContext. */
interface UpstreamTlsSettings {
  sni: string;
  caCerts: string[];
  alpn: string[] | undefined;
  sanCheck: SanCheck | undefined;
}

/** Reads the trusted CA and compiles the SAN matchers (config time; throws when the CA file is unreadable). */
function compile(config: UpstreamTlsConfig): UpstreamTlsSettings {
  const ctx = config.common_tls_context;
  const vc = ctx.validation_context;
  return {
    sni: config.sni ?? "",
    caCerts: vc?.trusted_ca ? [readDataSource(vc.trusted_ca)] : [],
    alpn: ctx.alpn_protocols.length > 0 ? [...ctx.alpn_protocols] : undefined,
    sanCheck: vc ? compileSanCheck(vc.match_typed_subject_alt_names, vc.match_subject_alt_names) : undefined,
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
  const base = compile({
    ...config,
    common_tls_context: { ...config.common_tls_context, validation_context: undefined },
  });
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
      seen = v;
      compiled = {
        ...base,
        caCerts: v.trustedCa !== undefined ? [v.trustedCa] : [],
        sanCheck: compileSanCheck(v.config.match_typed_subject_alt_names, v.config.match_subject_alt_names),
      };
    }
    return compiled;
  };
}

/**
 * Cluster warming on SDS: a SecretWait for the secrets an UpstreamTlsContext fetches over SDS (its
 * validation_context_sds_secret_config), or undefined when it fetches none.
 */
export function upstreamSecretWait(
  config: UpstreamTlsConfig,
  registry: SecretRegistry = threadSecrets,
): SecretWait | undefined {
  const vc = config.common_tls_context.validation_context_sds_secret_config;
  if (vc?.sds_config === undefined) return undefined;
  return new SecretWait([vc as SecretRef], registry);
}

function safeClose(c: Deno.Conn): void {
  try {
    c.close();
  } catch {
    // already closed
  }
}

/**
 * A ConnectFn speaking TLS (built once per cluster): TCP connect, handshake, SAN check. Rejects with an
 * Envoy-like transport failure reason, which the router reports in its 503 UF reply.
 */
export function createTlsConnect(
  config: UpstreamTlsConfig,
  tcpConnect?: ConnectFn,
  registry: SecretRegistry = threadSecrets,
): ConnectFn {
  const sds = config.common_tls_context.validation_context_sds_secret_config;
  const fixed = sds ? undefined : compile(config);
  const current = sds ? sdsSettings(config, sds.name, sds.sds_config !== undefined, registry) : () => fixed!;
  const open: ConnectFn = tcpConnect ?? ((o) => Deno.connect(o));
  return async (opts) => {
    const s = current();
    const tcp = await open(opts);
    let tls: Deno.TlsConn | undefined;
    const abort = () => safeClose(tls ?? tcp);
    opts.signal?.addEventListener("abort", abort, { once: true });
    try {
      tls = await Deno.startTls(tcp as Deno.TcpConn, {
        // an IP address here sends no SNI, as Envoy without `sni`
        hostname: s.sni !== "" ? s.sni : opts.hostname,
        caCerts: s.caCerts,
        alpnProtocols: s.alpn,
        unsafelyDisableHostnameVerification: true,
      });
      let info: Deno.TlsHandshakeInfo;
      try {
        info = await tls.handshake();
      } catch (e) {
        throw new Error(`TLS_error:|${(e as Error).message}:TLS_error_end`);
      }
      if (s.sanCheck !== undefined) {
        // deno-lint-ignore no-explicit-any -- internal accessor of the runtime
        const peer = (tls as any)[internals.getPeerCertificate](true) as { subjectaltname?: string } | null;
        if (!peer || !s.sanCheck(peer.subjectaltname ?? "")) {
          throw new Error(
            "TLS_error:|CERTIFICATE_VERIFY_FAILED: no subject alternative name matched:TLS_error_end",
          );
        }
      }
      negotiated.set(tls, info.alpnProtocol ?? "");
      return tls;
    } catch (e) {
      safeClose(tls ?? tcp);
      throw e;
    } finally {
      opts.signal?.removeEventListener("abort", abort);
    }
  };
}
