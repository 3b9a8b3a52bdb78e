/**
 * Loads the implementations of the lazily loaded extensions a parsed config names (`Extension.load`): run before
 * factories are created from it, like `prepareTls`. Walks the parsed config for extension references (objects
 * carrying the registry entry as `ext`), nested ones included (a compressor's library).
 */
import type { Extension } from "./registry.ts";

/** Awaits `load()` of every extension referenced anywhere in `config`. */
export async function prepareExtensions(config: unknown): Promise<void> {
  const pending: Promise<void>[] = [];
  const seen = new Set<object>();
  const loaded = new Set<Extension>();
  const walk = (v: unknown): void => {
    if (typeof v !== "object" || v === null || seen.has(v)) return;
    seen.add(v);
    if (Array.isArray(v)) {
      for (const x of v) walk(x);
      return;
    }
    if (v instanceof Map) {
      for (const x of v.values()) walk(x);
      return;
    }
    const ext = (v as { ext?: Extension }).ext;
    if (ext !== undefined && typeof ext.load === "function" && !loaded.has(ext)) {
      loaded.add(ext);
      pending.push(ext.load());
    }
    for (const x of Object.values(v)) walk(x);
  };
  walk(config);
  await Promise.all(pending);
}

/** The module `load()` stored; throws when `create` runs before it (a caller skipped prepareExtensions). */
export function loadedModule<T>(m: T | undefined, name: string): T {
  if (m === undefined) throw new Error(`Extension ${name} was used before prepareExtensions() loaded it`);
  return m;
}
