/**
 * Certificate loading and reload: reads DataSources (files, inline text, environment), validates each
 * certificate/key pair, and polls the files so a rotated certificate is picked up without a restart. A bad
 * new file is logged and the last good pair keeps serving.
 */
import type { X509Certificate } from "node:crypto";
import { Logger } from "../common/log.ts";
import type { SecretConfig } from "./secret.ts";
import type { DataSourceConfig, TlsCertificateConfig } from "./tls_config.ts";

const log = new Logger("secret");

let nodeCrypto: typeof import("node:crypto") | undefined;

/**
 * Loads node:crypto (certificate parsing and key checks); awaited before a config with TLS is built. Proxies
 * without TLS never load it, nor Node's compatibility layer (~7 MB of resident memory).
 */
export async function loadTlsRuntime(): Promise<void> {
  nodeCrypto ??= await import("node:crypto");
}

function crypto(): typeof import("node:crypto") {
  if (nodeCrypto === undefined) throw new Error("TLS runtime not loaded (await loadTlsRuntime() first)");
  return nodeCrypto;
}

/** node:crypto once loadTlsRuntime() ran (throws before): for code that parses certificates. */
export function tlsCrypto(): typeof import("node:crypto") {
  return crypto();
}

/** A validated certificate chain and private key (PEM) with the DNS names the leaf is valid for. */
export interface CertifiedKey {
  /** PEM certificate chain, leaf first. */
  readonly cert: string;
  /** PEM private key. */
  readonly key: string;
  /** Lower-cased DNS SANs (or the CN when there are none), wildcards kept as "*.example.com". */
  readonly names: readonly string[];
}

/** Reads a DataSource's text at config or reload time; throws with the file name on failure. */
export function readDataSource(ds: DataSourceConfig): string {
  if (ds.filename !== undefined) return Deno.readTextFileSync(ds.filename);
  if (ds.inline_string !== undefined) return ds.inline_string;
  if (ds.inline_bytes !== undefined) {
    return new TextDecoder().decode(Uint8Array.from(atob(ds.inline_bytes), (c) => c.charCodeAt(0)));
  }
  const v = Deno.env.get(ds.environment_variable!);
  if (v === undefined) throw new Error(`Environment variable ${ds.environment_variable} is not set`);
  return v;
}

const PEM_CERT_RE = /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g;

/** Checks a trusted CA bundle (PEM): at least one certificate, each parseable; throws a readable error. */
export function validateTrustedCa(pem: string): void {
  const blocks = pem.match(PEM_CERT_RE);
  if (!blocks) throw new Error("Invalid trusted CA: no PEM certificate found");
  const { X509Certificate: X509 } = crypto();
  blocks.forEach((b, i) => {
    try {
      new X509(b);
    } catch (e) {
      throw new Error(`Invalid trusted CA: certificate ${i + 1}: ${(e as Error).message}`);
    }
  });
}

/** Parses and checks one certificate/key pair; throws a readable error when they are unusable. */
export function validateCertifiedKey(cert: string, key: string): CertifiedKey {
  const { X509Certificate: X509, createPrivateKey, createPublicKey } = crypto();
  let x509: X509Certificate;
  try {
    x509 = new X509(cert);
  } catch (e) {
    throw new Error(`Invalid certificate chain: ${(e as Error).message}`);
  }
  let pub: string;
  try {
    pub = createPublicKey(createPrivateKey(key)).export({ type: "spki", format: "pem" }) as string;
  } catch (e) {
    throw new Error(`Invalid private key: ${(e as Error).message}`);
  }
  if (x509.publicKey.export({ type: "spki", format: "pem" }) !== pub) {
    throw new Error("Private key does not match the certificate");
  }
  const names: string[] = [];
  for (const part of (x509.subjectAltName ?? "").split(",")) {
    const p = part.trim();
    if (p.startsWith("DNS:")) names.push(p.slice(4).toLowerCase());
  }
  if (names.length === 0) {
    const cn = /(?:^|\n)CN=([^\n]+)/.exec(x509.subject)?.[1];
    if (cn) names.push(cn.toLowerCase());
  }
  return { cert, key, names };
}

/** Loads every TlsCertificate of a context; throws on the first unusable one (config time). */
export function loadCertificates(certs: readonly TlsCertificateConfig[]): CertifiedKey[] {
  return certs.map((c, i) => {
    try {
      return validateCertifiedKey(readDataSource(c.certificate_chain), readDataSource(c.private_key));
    } catch (e) {
      throw new Error(`tls_certificates[${i}]: ${(e as Error).message}`);
    }
  });
}

/** Picks the certificate for `sni` as Envoy does: an exact name, then a wildcard, else the first. */
export function selectCertificate(certs: readonly CertifiedKey[], sni: string): CertifiedKey {
  if (certs.length === 1 || sni === "") return certs[0];
  const name = sni.toLowerCase();
  const dot = name.indexOf(".");
  const wild = dot > 0 ? `*${name.slice(dot)}` : "";
  let wildHit: CertifiedKey | undefined;
  for (const c of certs) {
    for (const n of c.names) {
      if (n === name) return c;
      if (n === wild && wildHit === undefined) wildHit = c;
    }
  }
  return wildHit ?? certs[0];
}

/** Options of a CertWatcher. */
export interface CertWatcherOptions {
  /** How often files are checked (default 1000 ms). */
  intervalMs?: number;
  /** Called with the new set after a successful reload. */
  onChange: (certs: CertifiedKey[]) => void;
  /** Poll on a timer (default true); false: the owner calls `reloadIfChanged` itself (no timer to close). */
  poll?: boolean;
}

/** Polls the files behind a context's certificates and reloads them when they change. */
export class CertWatcher {
  #certs: readonly TlsCertificateConfig[];
  #current: CertifiedKey[];
  #stamps: string;
  #timer: ReturnType<typeof setInterval> | undefined;
  #onChange: (certs: CertifiedKey[]) => void;
  #busy = false;

  /** Loads the certificates now (throws when unusable) and starts polling when any comes from a file. */
  constructor(certs: readonly TlsCertificateConfig[], opts: CertWatcherOptions) {
    this.#certs = certs;
    this.#current = loadCertificates(certs);
    this.#onChange = opts.onChange;
    this.#stamps = this.#stampNow();
    const files = certs.some((c) => c.certificate_chain.filename || c.private_key.filename);
    if (files && opts.poll !== false) {
      const t = setInterval(() => this.#poll(), opts.intervalMs ?? 1000);
      Deno.unrefTimer(t);
      this.#timer = t;
    }
  }

  /** The certificates currently served. */
  get current(): CertifiedKey[] {
    return this.#current;
  }

  /** Stops polling. */
  close(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #stampNow(): string {
    const parts: string[] = [];
    for (const c of this.#certs) {
      for (const ds of [c.certificate_chain, c.private_key]) {
        if (ds.filename === undefined) continue;
        try {
          const st = Deno.statSync(ds.filename);
          parts.push(`${st.mtime?.getTime()}:${st.size}:${st.ino}`);
        } catch {
          parts.push("missing");
        }
      }
    }
    return parts.join("|");
  }

  /** Checks the files once (tests call it directly); returns true when a new set was installed. */
  reloadIfChanged(): boolean {
    const stamps = this.#stampNow();
    if (stamps === this.#stamps) return false;
    this.#stamps = stamps;
    let next: CertifiedKey[];
    try {
      next = loadCertificates(this.#certs);
    } catch (e) {
      log.warn(`Certificate reload failed, keeping the previous certificate: ${(e as Error).message}`);
      return false;
    }
    if (next.every((c, i) => c.cert === this.#current[i].cert && c.key === this.#current[i].key)) {
      return false;
    }
    this.#current = next;
    log.info("Certificates reloaded");
    this.#onChange(next);
    return true;
  }

  #poll(): void {
    if (this.#busy) return;
    this.#busy = true;
    try {
      this.reloadIfChanged();
    } finally {
      this.#busy = false;
    }
  }
}

/** What `prepareTls` looks at: the transport sockets of listeners' filter chains and of clusters, and secrets. */
interface TlsUsers {
  static_resources: {
    listeners: readonly { filter_chains: readonly { transport_socket?: { kind: string } }[] }[];
    clusters: readonly { transport_socket?: { kind: string } }[];
    secrets?: readonly SecretConfig[];
  };
}

/**
 * Loads the TLS runtime when the bootstrap has any TLS transport socket or secret (before building the data
 * plane), and installs the static secrets in this event loop's registry (one that cannot be used is left out:
 * `staticSecretIssues` reports it at load time).
 */
export async function prepareTls(b: TlsUsers): Promise<void> {
  const r = b.static_resources;
  const uses = r.clusters.some((c) => c.transport_socket?.kind === "tls") ||
    r.listeners.some((l) => l.filter_chains.some((fc) => fc.transport_socket?.kind === "tls")) ||
    (r.secrets?.length ?? 0) > 0;
  if (!uses) return;
  await loadTlsRuntime();
  const { secrets, resolveSecret } = await import("./secret.ts");
  for (const s of r.secrets ?? []) {
    try {
      secrets.set(s.name, resolveSecret(s), "", true);
    } catch (e) {
      log.warn(`Static secret "${s.name}" is unusable: ${(e as Error).message}`);
    }
  }
}
