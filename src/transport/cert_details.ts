/**
 * Envoy's admin.v3.CertificateDetails of a PEM certificate (what /certs lists for every TLS context): path,
 * serial number, subject alternative names, days until expiration, validity. Runs on admin requests only.
 */
import { tlsCrypto } from "./cert_store.ts";
import { envoySerial } from "./tls_facts.ts";

/** One certificate in /certs (proto3 JSON: uint64 as a string, Timestamps as RFC 3339). */
export interface CertificateDetailsJson {
  path: string;
  serial_number: string;
  subject_alt_names: ({ dns: string } | { uri: string } | { ip_address: string })[];
  days_until_expiration: string;
  valid_from: string;
  expiration_time: string;
}

const PEM_CERT_RE = /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/;

/** An RFC 3339 timestamp as protobuf's JSON mapping prints it (no fraction when it is zero). */
function timestamp(ms: number): string {
  return new Date(ms).toISOString().replace(".000Z", "Z");
}

/**
 * The details of the first certificate in `pem` (the leaf of a chain, the first CA of a bundle), or undefined
 * when there is none that parses. `path` is the file name or "<inline>".
 */
export function certificateDetails(
  pem: string,
  path: string,
  now = Date.now(),
): CertificateDetailsJson | undefined {
  const block = PEM_CERT_RE.exec(pem)?.[0];
  if (block === undefined) return undefined;
  let x: import("node:crypto").X509Certificate;
  try {
    x = new (tlsCrypto().X509Certificate)(block);
  } catch {
    return undefined;
  }
  const sans: CertificateDetailsJson["subject_alt_names"] = [];
  const parts = (x.subjectAltName ?? "").split(", ").filter((p) => p !== "");
  for (const p of parts) if (p.startsWith("DNS:")) sans.push({ dns: p.slice(4) });
  for (const p of parts) if (p.startsWith("URI:")) sans.push({ uri: p.slice(4) });
  for (const p of parts) if (p.startsWith("IP Address:")) sans.push({ ip_address: p.slice(11) });
  const from = Date.parse(x.validFrom);
  const to = Date.parse(x.validTo);
  return {
    path,
    serial_number: envoySerial(x.serialNumber),
    subject_alt_names: sans,
    // Envoy: whole days left, 0 once expired
    days_until_expiration: String(Math.max(0, Math.floor((to - now) / 86_400_000))),
    valid_from: timestamp(from),
    expiration_time: timestamp(to),
  };
}
