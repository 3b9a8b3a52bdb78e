/**
 * Metadata match criteria (Envoy's Router::MetadataMatchCriteria): the `envoy.lb` key/value pairs a request asks
 * the subset load balancer for, from the route's metadata_match, a weighted cluster's, and the request's dynamic
 * metadata. Values compare as Envoy's HashedValue does: by content (object keys in any order, 1 equals 1.0,
 * true differs from "true"). Built at config time; merged per request only when dynamic metadata asks.
 */
import type { Struct } from "../config/metadata.ts";

/** Request dynamic metadata (StreamInfo.dynamicMetadata): namespace -> fields. */
export type DynamicMetadata = Record<string, Record<string, unknown>>;

/** A value's identity for matching: its JSON with object keys sorted (config time, or per merged request). */
export function valueKey(v: unknown): string {
  if (v === null || typeof v !== "object") return JSON.stringify(v) ?? "null";
  if (Array.isArray(v)) return `[${v.map(valueKey).join(",")}]`;
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${valueKey(o[k])}`).join(",")}}`;
}

/** The subset key of sorted names and their value keys: what the subset load balancer indexes subsets by. */
export function subsetKey(names: readonly string[], valueKeys: readonly string[]): string {
  let s = "";
  for (let i = 0; i < names.length; i++) s += `${names[i]}\u0000${valueKeys[i]}\u0001`;
  return s;
}

/** Sorted `envoy.lb` criteria with their subset key; immutable. */
export class MetadataMatchCriteria {
  /** Criterion names, sorted. */
  readonly names: readonly string[];
  /** Values, parallel to `names`. */
  readonly values: readonly unknown[];
  /** valueKey of each value, parallel to `names`. */
  readonly valueKeys: readonly string[];
  /** subsetKey(names, valueKeys). */
  readonly key: string;
  /** The names joined with NUL (which subset selector they make up). */
  readonly namesKey: string;

  private constructor(entries: [string, unknown][]) {
    entries.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    this.names = entries.map((e) => e[0]);
    this.values = entries.map((e) => e[1]);
    this.valueKeys = this.values.map(valueKey);
    this.key = subsetKey(this.names, this.valueKeys);
    this.namesKey = this.names.join("\u0000");
  }

  /** Criteria from a Struct's fields; null when it has none (no criteria, as Envoy's empty match). */
  static fromStruct(s: Struct | undefined): MetadataMatchCriteria | null {
    if (s === undefined) return null;
    const entries = Object.entries(s);
    return entries.length === 0 ? null : new MetadataMatchCriteria(entries);
  }

  /** The number of criteria. */
  get size(): number {
    return this.names.length;
  }

  /** The value of criterion `name`, or undefined. */
  get(name: string): unknown {
    const i = this.names.indexOf(name);
    return i < 0 ? undefined : this.values[i];
  }

  /** These criteria with `s`'s fields added; a name in both takes `s`'s value (mergeMatchCriteria). */
  merge(s: Struct): MetadataMatchCriteria {
    const m = new Map<string, unknown>();
    for (let i = 0; i < this.names.length; i++) m.set(this.names[i], this.values[i]);
    for (const k of Object.keys(s)) m.set(k, s[k]);
    return new MetadataMatchCriteria([...m]);
  }

  /** Only the criteria whose name is in `names`; null when none is (filterMatchCriteria). */
  filter(names: ReadonlySet<string>): MetadataMatchCriteria | null {
    const entries: [string, unknown][] = [];
    for (let i = 0; i < this.names.length; i++) {
      if (names.has(this.names[i])) entries.push([this.names[i], this.values[i]]);
    }
    return entries.length === 0 ? null : new MetadataMatchCriteria(entries);
  }
}

/** Criteria of `base` (may be null) merged with `s` (null: `s` alone; empty `s`: `base`). */
export function mergeCriteria(base: MetadataMatchCriteria | null, s: Struct): MetadataMatchCriteria | null {
  if (base === null) return MetadataMatchCriteria.fromStruct(s);
  for (const _ in s) return base.merge(s);
  return base;
}

/**
 * The criteria a routed request asks the load balancer for: the route's (or its weighted cluster's), overridden
 * by the request's dynamic metadata in `envoy.lb` (as Envoy's router). Allocates only when that namespace is set.
 */
export function requestCriteria(
  route: MetadataMatchCriteria | null,
  dynamic: DynamicMetadata | null,
): MetadataMatchCriteria | null {
  const lb = dynamic === null ? undefined : dynamic["envoy.lb"];
  return lb === undefined ? route : mergeCriteria(route, lb);
}

/** Sets `fields` in namespace `ns` of `metadata` (Envoy's setDynamicMetadata merges into the namespace). */
export function setDynamicMetadata(
  metadata: DynamicMetadata | null,
  ns: string,
  fields: Record<string, unknown>,
): DynamicMetadata {
  const out = metadata ?? {};
  const cur = out[ns];
  if (cur === undefined) out[ns] = { ...fields };
  else Object.assign(cur, fields);
  return out;
}
