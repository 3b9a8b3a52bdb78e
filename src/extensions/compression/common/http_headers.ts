/**
 * Header checks the compressor and decompressor filters share (Envoy's StringUtil::caseFindToken and
 * Http::Utility::isUpgrade over nuncio's HeaderMap), and Envoy's RuntimeFeatureFlag as both filters read it.
 */
import type { HeaderMap } from "../../../http/headers.ts";
import { runtime } from "../../../runtime/current.ts";

/** True when some comma-separated token of some `name` line equals `token` (case-insensitive, trimmed). */
export function hasToken(h: HeaderMap, name: string, token: string): boolean {
  const names = h.names;
  for (let i = 0; i < names.length; i++) {
    if (names[i] === name && listHasToken(h.values[i], token)) return true;
  }
  return false;
}

/** True when a comma-separated list holds `token` (lowercase), compared case-insensitively after trimming. */
export function listHasToken(list: string, token: string): boolean {
  let start = 0;
  while (start <= list.length) {
    let end = list.indexOf(",", start);
    if (end < 0) end = list.length;
    if (end - start >= token.length && list.slice(start, end).trim().toLowerCase() === token) return true;
    start = end + 1;
  }
  return false;
}

/** Envoy's Http::Utility::isUpgrade: a `connection` line holding "upgrade" and an `upgrade` header. */
export function isUpgrade(h: HeaderMap): boolean {
  return h.has("upgrade") && hasToken(h, "connection", "upgrade");
}

/** True when cache-control carries no-transform. */
export function hasNoTransform(h: HeaderMap): boolean {
  return hasToken(h, "cache-control", "no-transform");
}

/** Every `name` line joined with "," (how Envoy's codecs coalesce a repeated inline header), or undefined. */
export function joined(h: HeaderMap, name: string): string | undefined {
  const names = h.names;
  let out: string | undefined;
  for (let i = 0; i < names.length; i++) {
    if (names[i] === name) out = out === undefined ? h.values[i] : `${out},${h.values[i]}`;
  }
  return out;
}

/** Envoy's Runtime::FeatureFlag: the runtime key's boolean, else the default (true when the flag is absent). */
export class FeatureFlag {
  readonly key: string;
  readonly defaultValue: boolean;
  constructor(flag: { default_value: boolean; runtime_key: string } | undefined) {
    this.key = flag?.runtime_key ?? "";
    this.defaultValue = flag?.default_value ?? true;
  }
  /** Whether the feature is on for this request (one map lookup when a key is set). */
  enabled(): boolean {
    return this.key === "" ? this.defaultValue : runtime().getBoolean(this.key, this.defaultValue);
  }
}
