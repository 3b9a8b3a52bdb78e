/**
 * Envoy's runtime snapshot (source/common/runtime/runtime_impl.cc): the merged key -> entry map of every loaded
 * layer, each entry keeping its raw string and the typed values Envoy resolves once (a boolean, a double and the
 * uint floor of a non-negative double, or a FractionalPercent), and the lookups features make per request:
 * `getInteger`, `getDouble`, `getBoolean`, `featureEnabled` (a 0-100 percent, or a FractionalPercent default
 * that a runtime integer overrides as a percent of 100).
 */
import { parse as parseYaml } from "yaml";
import { fractionalPercent } from "../config/common.ts";

/** FractionalPercent denominators as numbers. */
export const DENOMINATORS = { HUNDRED: 100, TEN_THOUSAND: 10_000, MILLION: 1_000_000 } as const;

/** A FractionalPercent resolved to numbers. */
export interface Fractional {
  readonly numerator: number;
  /** 100, 10,000 or 1,000,000. */
  readonly denominator: number;
}

/** One runtime value: the raw string (what /runtime shows) and what it parses as. */
export interface RuntimeEntry {
  readonly raw: string;
  /** An integer ("0" false, anything else true), or "true"/"false" in any case. */
  readonly bool?: boolean;
  /** A number (absl::SimpleAtod). */
  readonly double?: number;
  /** The floor of a double in [0, 2^64]. */
  readonly uint?: number;
  /** A FractionalPercent written as YAML/JSON (`numerator: 5` / `{"numerator": 5, "denominator": "MILLION"}`). */
  readonly fraction?: Fractional;
}

const UINT64_MAX = 18446744073709551615;
/** absl::SimpleAtoi into uint64: an optional "+" and decimal digits (whitespace already stripped). */
const UINT_RE = /^\+?\d+$/;
/** absl::SimpleAtod: a decimal float, inf(inity) or nan, surrounded by optional whitespace. */
const DOUBLE_RE = /^\s*[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|inf(?:inity)?|nan)\s*$/i;

/**
 * Parses a raw runtime value as Envoy's `SnapshotImpl::createEntry` does: "true"/"false" (any case) are booleans
 * only; an unsigned integer is also a boolean (non-zero); any number is a double, and when in [0, 2^64] its floor
 * is the integer; anything else is tried as a FractionalPercent in YAML.
 */
export function createEntry(raw: string): RuntimeEntry {
  const stripped = raw.trim();
  let bool: boolean | undefined;
  if (UINT_RE.test(stripped)) {
    const n = Number(stripped);
    if (n <= UINT64_MAX) bool = n !== 0;
  } else {
    const lower = stripped.toLowerCase();
    if (lower === "true") return { raw, bool: true };
    if (lower === "false") return { raw, bool: false };
  }
  const e: { -readonly [K in keyof RuntimeEntry]: RuntimeEntry[K] } = { raw };
  if (bool !== undefined) e.bool = bool;
  if (DOUBLE_RE.test(raw)) {
    const t = raw.trim().toLowerCase().replace(/^([+-]?)inf(inity)?$/, "$1Infinity");
    const d = t.endsWith("nan") ? NaN : Number(t);
    e.double = d;
    if (d >= 0 && d <= UINT64_MAX) e.uint = Math.floor(d);
    return e;
  }
  const fraction = parseFraction(raw);
  if (fraction) e.fraction = fraction;
  return e;
}

/** A YAML/JSON FractionalPercent (unknown fields or a non-mapping: none, as Envoy's strict load fails). */
function parseFraction(raw: string): Fractional | undefined {
  let v: unknown;
  try {
    v = parseYaml(raw);
  } catch {
    return undefined;
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) return undefined;
  const r = fractionalPercent.safeParse(v);
  if (!r.success) return undefined;
  return { numerator: r.data.numerator, denominator: DENOMINATORS[r.data.denominator] };
}

/** A named layer's entries (static, disk, admin), in the order /runtime lists them. */
export interface LayerValues {
  readonly name: string;
  readonly values: ReadonlyMap<string, RuntimeEntry>;
}

/** The merged view of every loaded layer; immutable, swapped whole when the runtime reloads. */
export class RuntimeSnapshot {
  readonly #values: ReadonlyMap<string, RuntimeEntry>;

  /** Merges `layers`, later ones overriding earlier ones (`version` counts snapshots, 0 = none loaded yet). */
  constructor(readonly layers: readonly LayerValues[], readonly version = 0) {
    const merged = new Map<string, RuntimeEntry>();
    for (const l of layers) for (const [k, v] of l.values) merged.set(k, v);
    this.#values = merged;
  }

  /** Number of keys after merging (`runtime.num_keys`). */
  get size(): number {
    return this.#values.size;
  }

  /** Every merged entry (key order of first appearance). */
  entries(): IterableIterator<[string, RuntimeEntry]> {
    return this.#values.entries();
  }

  /** The raw string of `key`, or undefined. */
  get(key: string): string | undefined {
    return this.#values.get(key)?.raw;
  }

  /** The entry of `key` (absent for "" or an unknown key). */
  entry(key: string): RuntimeEntry | undefined {
    return key === "" ? undefined : this.#values.get(key);
  }

  /** The integer value of `key`, or `defaultValue` when absent or not a non-negative number. */
  getInteger(key: string, defaultValue: number): number {
    return (key === "" ? undefined : this.#values.get(key)?.uint) ?? defaultValue;
  }

  /** The double value of `key`, or `defaultValue`. */
  getDouble(key: string, defaultValue: number): number {
    return (key === "" ? undefined : this.#values.get(key)?.double) ?? defaultValue;
  }

  /** The boolean value of `key` (an integer, or "true"/"false"), or `defaultValue`. */
  getBoolean(key: string, defaultValue: boolean): boolean {
    return (key === "" ? undefined : this.#values.get(key)?.bool) ?? defaultValue;
  }

  /**
   * Envoy's `featureEnabled(key, default_value)`: true for `min(getInteger(key, defaultPercent), 100)` percent of
   * the calls (no random draw at 0 or 100).
   */
  featureEnabled(key: string, defaultPercent: number): boolean {
    const v = this.getInteger(key, defaultPercent);
    const cutoff = v < 100 ? v : 100;
    if (cutoff <= 0) return false;
    if (cutoff >= 100) return true;
    return Math.floor(Math.random() * 100) < cutoff;
  }

  /** Envoy's `featureEnabled(key, default, random_value, num_buckets)`: `random % buckets < min(value, buckets)`. */
  featureEnabledBuckets(key: string, defaultValue: number, randomValue: number, buckets: number): boolean {
    const v = this.getInteger(key, defaultValue);
    return randomValue % buckets < (v < buckets ? v : buckets);
  }

  /**
   * Envoy's `featureEnabled(key, FractionalPercent default[, random_value])`: the key's FractionalPercent, or its
   * integer as a percent of 100 (over 100: always), else the default; true when `random % denominator <
   * numerator`. Without `randomValue` a uniform draw in [0, denominator) is made.
   */
  fractionEnabled(key: string, numerator: number, denominator: number, randomValue?: number): boolean {
    const e = key === "" ? undefined : this.#values.get(key);
    if (e !== undefined) {
      if (e.fraction !== undefined) {
        numerator = e.fraction.numerator;
        denominator = e.fraction.denominator;
      } else if (e.uint !== undefined) {
        if (e.uint > 100) return true;
        numerator = e.uint;
        denominator = 100;
      }
    }
    const r = randomValue === undefined ? Math.floor(Math.random() * denominator) : randomValue % denominator;
    return r < numerator;
  }
}

/** The runtime before any layer loaded (every lookup answers its default). */
export const EMPTY_SNAPSHOT: RuntimeSnapshot = new RuntimeSnapshot([], 0);
