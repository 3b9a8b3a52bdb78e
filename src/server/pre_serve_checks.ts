/**
 * Everything serving would fail on that the schema cannot see, checked once after it (by `--mode validate`
 * and before serve alike): cluster references, unreadable certificates and keys, log files that cannot be
 * opened, and each extension's own `preflight`. Nothing is created, truncated or written.
 */
import { checkAppendableFile } from "../common/file_check.ts";
import type { Bootstrap } from "../config/bootstrap.ts";
import type { ConfigIssue } from "../config/errors.ts";
import { configError } from "../config/errors.ts";
import { prepareTls } from "../transport/cert_store.ts";
import { prepareExtensions } from "../registry/prepare.ts";
import { staticSecretIssues } from "../transport/secret.ts";
import { checkTransportSocketFiles } from "../transport/tls_preflight.ts";
import { configSourceClusterIssues } from "../xds/config_check.ts";
import { checkClusterReferences, forEachExtensionRef } from "./cross_check.ts";

/** Options of preServeChecks. */
export interface PreServeOptions {
  /** Check that referenced clusters exist (default true; xDS resources may name clusters still to come). */
  clusterReferences?: boolean;
  /** Names of the static secrets SDS references may use (default: the bootstrap's static_resources.secrets). */
  staticSecrets?: ReadonlySet<string>;
}

/** SDS secret references without `sds_config` name a static secret that must exist (serve fails otherwise). */
function staticSecretReferenceIssues(
  ts: Bootstrap["static_resources"]["clusters"][number]["transport_socket"],
  at: (string | number)[],
  secrets: ReadonlySet<string>,
): ConfigIssue[] {
  if (ts?.kind !== "tls") return [];
  const common = ts.config.common_tls_context;
  const base = [...at, "typed_config", "common_tls_context"];
  const refs: [{ name: string; sds_config?: unknown } | undefined, (string | number)[]][] = [
    ...common.tls_certificate_sds_secret_configs.map((
      s,
      i,
    ): [typeof s, (string | number)[]] => [s, [...base, "tls_certificate_sds_secret_configs", i, "name"]]),
    [common.validation_context_sds_secret_config, [...base, "validation_context_sds_secret_config", "name"]],
  ];
  return refs.filter(([s]) => s !== undefined && s.sds_config === undefined && !secrets.has(s.name)).map((
    [s, path],
  ) =>
    configError(
      path,
      `Unknown static secret "${s!.name}" (no sds_config and not in static_resources.secrets)`,
    )
  );
}

/** Runs at load time, before serving (pass it as `crossCheck`): resolves to every positioned problem found. */
export async function preServeChecks(b: Bootstrap, opts: PreServeOptions = {}): Promise<ConfigIssue[]> {
  const issues = opts.clusterReferences === false
    ? []
    : [...checkClusterReferences(b), ...configSourceClusterIssues(b)];
  forEachExtensionRef(b, [], (ref, path) => {
    for (const p of ref.ext.preflight?.(ref.config) ?? []) {
      issues.push(configError([...path, "typed_config", ...p.path], p.message));
    }
  });
  await prepareTls(b); // certificate/key pairs are checked with the TLS runtime serve would use
  await prepareExtensions(b); // and the implementations serve would load load here too
  if ((b.static_resources.secrets?.length ?? 0) > 0) {
    issues.push(...staticSecretIssues(b.static_resources.secrets));
  }
  const sr = ["static_resources"];
  const secrets = opts.staticSecrets ?? new Set((b.static_resources.secrets ?? []).map((s) => s.name));
  b.static_resources.listeners.forEach((l, li) => {
    l.filter_chains.forEach((fc, ci) => {
      const at = [...sr, "listeners", li, "filter_chains", ci, "transport_socket"];
      issues.push(...checkTransportSocketFiles(fc.transport_socket, at, true));
      issues.push(...staticSecretReferenceIssues(fc.transport_socket, at, secrets));
    });
  });
  b.static_resources.clusters.forEach((c, i) => {
    const at = [...sr, "clusters", i];
    issues.push(...checkTransportSocketFiles(c.transport_socket, [...at, "transport_socket"], true));
    issues.push(...staticSecretReferenceIssues(c.transport_socket, [...at, "transport_socket"], secrets));
    c.health_checks?.forEach((hc, j) => {
      const why = hc.event_log_path ? checkAppendableFile(hc.event_log_path) : undefined;
      if (why) issues.push(configError([...at, "health_checks", j, "event_log_path"], why));
    });
  });
  const adminLog = b.admin?.access_log_path;
  const why = adminLog ? checkAppendableFile(adminLog) : undefined;
  if (why) issues.push(configError(["admin", "access_log_path"], why));
  return issues;
}
