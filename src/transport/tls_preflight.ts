/**
 * Load-time checks of a TLS transport socket's DataSources: every certificate, key and trusted CA must be
 * readable (and each certificate/key pair usable) before serving, so `--mode validate` fails where serve would.
 */
import { checkReadableFile } from "../common/file_check.ts";
import type { ConfigIssue, PathSegment } from "../config/errors.ts";
import { configError } from "../config/errors.ts";
import { readDataSource, validateCertifiedKey, validateTrustedCa } from "./cert_store.ts";
import { parsePemCrls } from "./crl.ts";
import type {
  DataSourceConfig,
  DownstreamTlsConfig,
  TransportSocketConfig,
  UpstreamTlsConfig,
} from "./tls_config.ts";

/** Why a DataSource cannot be read (with the path of the faulty field), or undefined when it can. */
function checkDataSource(ds: DataSourceConfig, path: PathSegment[]): ConfigIssue | undefined {
  if (ds.filename !== undefined) {
    const why = checkReadableFile(ds.filename);
    return why ? configError([...path, "filename"], why) : undefined;
  }
  if (ds.environment_variable !== undefined && Deno.env.get(ds.environment_variable) === undefined) {
    return configError(
      [...path, "environment_variable"],
      `Environment variable ${ds.environment_variable} is not set`,
    );
  }
  return undefined;
}

/**
 * Runs once at load (validate and serve) on a listener's or cluster's `transport_socket` at `path`: returns
 * the unreadable DataSources and, when the TLS runtime is loaded, the certificate/key pairs it would reject.
 */
export function checkTransportSocketFiles(
  ts: TransportSocketConfig<DownstreamTlsConfig | UpstreamTlsConfig> | undefined,
  path: PathSegment[],
  validatePairs: boolean,
): ConfigIssue[] {
  if (ts?.kind !== "tls") return [];
  const base = [...path, "typed_config", "common_tls_context"];
  const ctx = ts.config.common_tls_context;
  const issues: ConfigIssue[] = [];
  ctx.tls_certificates.forEach((c, i) => {
    const at = [...base, "tls_certificates", i];
    const bad = [
      checkDataSource(c.certificate_chain, [...at, "certificate_chain"]),
      checkDataSource(c.private_key, [...at, "private_key"]),
    ].filter((x) => x !== undefined);
    issues.push(...bad);
    if (bad.length > 0 || !validatePairs) return;
    try {
      validateCertifiedKey(readDataSource(c.certificate_chain), readDataSource(c.private_key));
    } catch (e) {
      issues.push(configError(at, (e as Error).message));
    }
  });
  const ca = ctx.validation_context?.trusted_ca;
  if (ca) {
    const at = [...base, "validation_context", "trusted_ca"];
    const bad = checkDataSource(ca, at);
    if (bad) issues.push(bad);
    else if (validatePairs) {
      // Envoy refuses a bundle it cannot load; Deno would only fail at the first connect
      try {
        validateTrustedCa(readDataSource(ca));
      } catch (e) {
        issues.push(configError(at, (e as Error).message));
      }
    }
  }
  const crl = ctx.validation_context?.crl;
  if (crl) {
    const at = [...base, "validation_context", "crl"];
    const bad = checkDataSource(crl, at);
    if (bad) issues.push(bad);
    else {
      // Envoy refuses a CRL file it cannot parse
      try {
        if (parsePemCrls(readDataSource(crl)).length === 0) throw new Error("no PEM CRL found");
      } catch (e) {
        issues.push(
          configError(at, `Failed to load CRL from ${crl.filename ?? "<inline>"}: ${(e as Error).message}`),
        );
      }
    }
  }
  return issues;
}
