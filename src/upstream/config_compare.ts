/** Comparing parsed cluster configs (CDS updates) and naming a health config (fresh health slots when it changes). */
import type { ClusterConfig } from "./config.ts";

/** True when `a` and `b` are structurally equal parsed config values (runs per cluster update, not per request). */
export function deepEqual(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) return false;
  if (a instanceof RegExp) return a.source === (b as RegExp).source && a.flags === (b as RegExp).flags;
  if (ArrayBuffer.isView(a)) {
    const x = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
    const bv = b as ArrayBufferView;
    const y = new Uint8Array(bv.buffer, bv.byteOffset, bv.byteLength);
    return x.length === y.length && x.every((v, i) => v === y[i]);
  }
  if (a instanceof Map || a instanceof Set) return false; // not produced by the schemas
  const ka = Object.keys(a), kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  const ra = a as Record<string, unknown>, rb = b as Record<string, unknown>;
  for (const k of ka) if (!Object.hasOwn(rb, k) || !deepEqual(ra[k], rb[k])) return false;
  return true;
}

/**
 * A short digest of `config`'s health_checks and outlier_detection ("" when it has neither), the same in every
 * thread for the same config: hosts of a cluster whose health config changed start from fresh shared slots.
 */
export function healthVariant(config: ClusterConfig): string {
  if (config.health_checks === undefined && config.outlier_detection === undefined) return "";
  const text = JSON.stringify(
    [config.health_checks ?? null, config.outlier_detection ?? null],
    (_k, v) => typeof v === "bigint" ? v.toString() : v,
  );
  let h1 = 0x811c9dc5, h2 = 0x01000193;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  return (h1 >>> 0).toString(36) + (h2 >>> 0).toString(36);
}
