/**
 * /certs in Envoy's shape (admin.v3.Certs): one entry per TLS context (every TLS filter chain of the listeners,
 * every TLS cluster, static and from xDS), each with its trusted CA (`ca_cert`, the bundle's first certificate
 * as Envoy shows it) and its certificates (`cert_chain`, the leaf of each). Built from the configuration the
 * admin already dumps: files are read as they are now, SDS secrets as this thread's registry holds them.
 */
import { loadTlsRuntime, readDataSource } from "../transport/cert_store.ts";
import { certificateDetails, type CertificateDetailsJson } from "../transport/cert_details.ts";
import { secrets } from "../transport/secret.ts";
import {
  DOWNSTREAM_TLS_TYPE,
  downstreamTlsContext,
  UPSTREAM_TLS_TYPE,
  upstreamTlsContext,
} from "../transport/tls_config.ts";
import type { ConfigDumpSource } from "./types.ts";

/** One TLS context in /certs. */
export interface CertsEntry {
  ca_cert: CertificateDetailsJson[];
  cert_chain: CertificateDetailsJson[];
}

type Obj = Record<string, unknown>;

function obj(v: unknown): Obj | undefined {
  return v !== null && typeof v === "object" && !Array.isArray(v) ? v as Obj : undefined;
}

function asArray(v: unknown): Obj[] {
  return Array.isArray(v) ? v.map(obj).filter((x): x is Obj => x !== undefined) : [];
}

/** The typed_config of every TLS transport socket in listeners and clusters (raw JSON, "@type" kept). */
function tlsContexts(listeners: Obj[], clusters: Obj[]): Obj[] {
  const out: Obj[] = [];
  const take = (ts: unknown) => {
    const tc = obj(obj(ts)?.typed_config);
    const t = tc?.["@type"];
    if (tc !== undefined && (t === DOWNSTREAM_TLS_TYPE || t === UPSTREAM_TLS_TYPE)) out.push(tc);
  };
  for (const l of listeners) {
    for (const chain of [...asArray(l.filter_chains), ...asArray([l.default_filter_chain])]) {
      take(chain.transport_socket);
    }
  }
  for (const c of clusters) take(c.transport_socket);
  return out;
}

function readOrUndefined(ds: Parameters<typeof readDataSource>[0]): string | undefined {
  try {
    return readDataSource(ds);
  } catch {
    return undefined;
  }
}

/** The /certs entry of one context's typed_config (undefined when it does not parse). */
function entry(tc: Obj, now: number): CertsEntry | undefined {
  const { "@type": type, ...rest } = tc;
  const parsed = type === DOWNSTREAM_TLS_TYPE
    ? downstreamTlsContext.safeParse(rest)
    : upstreamTlsContext.safeParse(rest);
  if (!parsed.success) return undefined;
  const common = parsed.data.common_tls_context;
  const chain: CertificateDetailsJson[] = [];
  for (const c of common.tls_certificates) {
    const pem = readOrUndefined(c.certificate_chain);
    const d = pem === undefined
      ? undefined
      : certificateDetails(pem, c.certificate_chain.filename ?? "<inline>", now);
    if (d) chain.push(d);
  }
  for (const ref of common.tls_certificate_sds_secret_configs) {
    const s = secrets.get(ref.name);
    if (s?.kind !== "tls_certificate") continue;
    const d = certificateDetails(s.certified.cert, s.path ?? "<inline>", now);
    if (d) chain.push(d);
  }
  const ca: CertificateDetailsJson[] = [];
  const vc = common.validation_context;
  if (vc?.trusted_ca) {
    const pem = readOrUndefined(vc.trusted_ca);
    const d = pem === undefined
      ? undefined
      : certificateDetails(pem, vc.trusted_ca.filename ?? "<inline>", now);
    if (d) ca.push(d);
  }
  const vcRef = common.validation_context_sds_secret_config;
  if (vcRef !== undefined) {
    const s = secrets.get(vcRef.name);
    if (s?.kind === "validation_context" && s.trustedCa !== undefined) {
      const d = certificateDetails(s.trustedCa, s.config.trusted_ca?.filename ?? "<inline>", now);
      if (d) ca.push(d);
    }
  }
  return { ca_cert: ca, cert_chain: chain };
}

/** Envoy's /certs JSON for the configuration in `src` (loads the TLS runtime when there is any TLS context). */
export async function certsJson(
  src: ConfigDumpSource,
  now = Date.now(),
): Promise<{ certificates: CertsEntry[] }> {
  const sr = obj(src.bootstrap.static_resources) ?? {};
  const listeners = [
    ...asArray(sr.listeners),
    ...(src.dynamicListeners ?? []).filter((r) => !r.draining).map((r) => r.resource),
  ];
  const clusters = [...asArray(sr.clusters), ...(src.dynamicClusters ?? []).map((r) => r.resource)];
  const contexts = tlsContexts(listeners, clusters);
  if (contexts.length === 0) return { certificates: [] };
  await loadTlsRuntime();
  const certificates: CertsEntry[] = [];
  for (const tc of contexts) {
    const e = entry(tc, now);
    if (e) certificates.push(e);
  }
  return { certificates };
}
