// deno-lint-ignore-file no-explicit-any -- walks parsed configs of every extension
/**
 * Config checks that need more than one part of the bootstrap: every cluster an extension names must exist.
 * Extensions declare their references (`Extension.clusterRefs`); nothing here knows an extension by name.
 */
import type { Bootstrap } from "../config/bootstrap.ts";
import type { ExtensionRef } from "../config/extension_ref.ts";
import type { ConfigIssue, PathSegment } from "../config/errors.ts";
import { configError } from "../config/errors.ts";

function isRef(v: any): v is ExtensionRef {
  return v !== null && typeof v === "object" && typeof v.name === "string" && "config" in v &&
    typeof v.ext?.category === "string";
}

function isPlain(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== "object") return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/**
 * Runs at load time: calls `visit` for every extension reference in a parsed config, nested ones included
 * (an HTTP filter inside a connection manager), with the path of its `{name, typed_config}` node. An object
 * holding its reference under `ref` (an access_log entry with a filter) stands for the reference itself.
 */
export function forEachExtensionRef(
  value: unknown,
  path: PathSegment[],
  visit: (ref: ExtensionRef, path: PathSegment[]) => void,
): void {
  if (Array.isArray(value)) {
    value.forEach((v, i) => forEachExtensionRef(v, [...path, i], visit));
    return;
  }
  if (!isPlain(value)) return;
  if (isRef(value)) {
    visit(value, path);
    forEachExtensionRef(value.config, [...path, "typed_config"], visit);
    return;
  }
  for (const [k, v] of Object.entries(value)) {
    if (k === "ref" && isRef(v)) {
      visit(v, path);
      forEachExtensionRef(v.config, [...path, "typed_config"], visit);
    } else forEachExtensionRef(v, [...path, k], visit);
  }
}

/** Runs at load time: every cluster named by any extension's config (listeners, bootstrap extensions, ...) must exist. */
export function checkClusterReferences(b: Bootstrap): ConfigIssue[] {
  const names = new Set(b.static_resources.clusters.map((c) => c.name));
  const issues: ConfigIssue[] = [];
  forEachExtensionRef(b, [], (ref, path) => {
    for (const c of ref.ext.clusterRefs?.(ref.config) ?? []) {
      if (!names.has(c.name)) {
        issues.push(configError([...path, "typed_config", ...c.path], `Unknown cluster "${c.name}"`));
      }
    }
  });
  return issues;
}
