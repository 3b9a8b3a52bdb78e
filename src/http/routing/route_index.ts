/**
 * The per-virtual-host route index: exact paths in a map, prefixes in a radix trie, everything else
 * in a list. Each source yields route indices in config order; lookup merges them and verifies
 * candidates in ascending order, so the result is the FIRST matching route, as a linear scan would give.
 */
import { isGrpcContentType } from "../grpc_util.ts";
import type { HeaderMatch, QueryMatch } from "./matchers.ts";
import { runtime } from "../../runtime/current.ts";
import type { RouteRequest } from "./types.ts";

/** How a route matches the path. */
export const enum PathKind {
  Prefix,
  Path,
  Regex,
  SeparatedPrefix,
}

/** The matching part of one route, compiled. */
export interface CompiledMatch {
  readonly kind: PathKind;
  /** prefix / path / path_separated_prefix (lowercase when not case-sensitive); "" for regex. */
  readonly value: string;
  readonly regex: RegExp | undefined;
  /** For regex routes: the literal text every match starts with ("" when unknown), used for indexing. */
  readonly regexPrefix: string;
  readonly caseSensitive: boolean;
  readonly headers: readonly HeaderMatch[];
  readonly query: readonly QueryMatch[];
  /** match.runtime_fraction: the runtime key and its default share (numerator / denominator). */
  readonly runtimeFraction?: {
    readonly key: string;
    readonly numerator: number;
    readonly denominator: number;
  };
  /** match.grpc: only requests with a gRPC content-type (application/grpc, +fmt or ;params). */
  readonly grpc?: boolean;
}

class TrieNode {
  children: Map<number, TrieNode> | undefined;
  routes: number[] = [];
  constructor(public label: string) {}
}

/** A radix trie of prefixes; each node lists the routes (ascending) whose prefix ends there. */
class PrefixTrie {
  readonly root = new TrieNode("");
  size = 0;

  insert(key: string, route: number): void {
    this.size++;
    let node = this.root;
    let pos = 0;
    for (;;) {
      if (pos === key.length) {
        node.routes.push(route);
        return;
      }
      const c = key.charCodeAt(pos);
      node.children ??= new Map();
      const child = node.children.get(c);
      if (!child) {
        const leaf = new TrieNode(key.slice(pos));
        leaf.routes.push(route);
        node.children.set(c, leaf);
        return;
      }
      const label = child.label;
      let l = 1;
      while (l < label.length && pos + l < key.length && label.charCodeAt(l) === key.charCodeAt(pos + l)) l++;
      if (l < label.length) {
        const mid = new TrieNode(label.slice(0, l));
        child.label = label.slice(l);
        mid.children = new Map([[child.label.charCodeAt(0), child]]);
        node.children.set(c, mid);
        node = mid;
      } else {
        node = child;
      }
      pos += l;
    }
  }

  /** Pushes the route lists of every prefix of `path[0, end)` into `out` (shortest first). */
  collect(path: string, end: number, out: (readonly number[])[]): void {
    let node = this.root;
    if (node.routes.length) out.push(node.routes);
    let pos = 0;
    while (pos < end && node.children) {
      const child = node.children.get(path.charCodeAt(pos));
      if (!child) return;
      const label = child.label;
      if (pos + label.length > end || !path.startsWith(label, pos)) return;
      pos += label.length;
      node = child;
      if (node.routes.length) out.push(node.routes);
    }
  }
}

// Scratch state for one lookup (matching is synchronous, so one set per thread is enough).
const lists: (readonly number[])[] = [];
const heads: number[] = [];

/** End of the path part of `path` (index of "?" or "#", else its length). */
export function pathEnd(path: string): number {
  const q = path.indexOf("?");
  const h = path.indexOf("#");
  if (q < 0) return h < 0 ? path.length : h;
  return h < 0 || q < h ? q : h;
}

/** The routes of one virtual host with their index. */
export class RouteIndex<T> {
  #matches: readonly CompiledMatch[];
  #entries: readonly T[];
  #exact = new Map<string, number[]>();
  #exactCi = new Map<string, number[]>();
  #trie = new PrefixTrie();
  #trieCi = new PrefixTrie();
  #others: number[] = [];
  #hasCi = false;
  #hasRegex = false;
  /**
   * The random value of the lookup in progress (-1: not drawn yet): every runtime_fraction route of one lookup
   * tests the same value, as Envoy's routes share the stream's random id, so consecutive fractions split traffic.
   */
  #random = -1;

  constructor(matches: readonly CompiledMatch[], entries: readonly T[]) {
    this.#matches = matches;
    this.#entries = entries;
    matches.forEach((m, i) => {
      if (!m.caseSensitive && m.kind !== PathKind.Regex) this.#hasCi = true;
      if (m.kind === PathKind.Regex) this.#hasRegex = true;
      switch (m.kind) {
        case PathKind.Path: {
          const map = m.caseSensitive ? this.#exact : this.#exactCi;
          const list = map.get(m.value);
          if (list) list.push(i);
          else map.set(m.value, [i]);
          break;
        }
        case PathKind.Prefix:
        case PathKind.SeparatedPrefix:
          (m.caseSensitive ? this.#trie : this.#trieCi).insert(m.value, i);
          break;
        default:
          // A regex with a literal prefix is a trie candidate (the regex is still verified); else it
          // must be tried for every request.
          if (m.regexPrefix) this.#trie.insert(m.regexPrefix, i);
          else this.#others.push(i);
      }
    });
  }

  /** Number of routes. */
  get size(): number {
    return this.#matches.length;
  }

  /** The entry of the first route matching `req`, or null. */
  match(req: RouteRequest): T | null {
    this.#random = -1;
    const path = req.path;
    const end = pathEnd(path);
    // The path without query is only materialized when an exact path or a regex needs it.
    const bare = end === path.length || (this.#exact.size === 0 && !this.#hasRegex)
      ? path
      : path.slice(0, end);
    lists.length = 0;
    let l = this.#exact.size ? this.#exact.get(bare) : undefined;
    if (l) lists.push(l);
    if (this.#trie.size) this.#trie.collect(path, end, lists);
    let lower = path;
    if (this.#hasCi) {
      lower = path.toLowerCase();
      l = this.#exactCi.get(end === path.length ? lower : lower.slice(0, end));
      if (l) lists.push(l);
      if (this.#trieCi.size) this.#trieCi.collect(lower, end, lists);
    }
    if (this.#others.length) lists.push(this.#others);
    const n = lists.length;
    if (n === 0) return null;
    const q = end < path.length && path.charCodeAt(end) === 63 /* ? */ ? end + 1 : -1;
    if (n === 1) {
      const only = lists[0];
      for (let k = 0; k < only.length; k++) {
        if (this.#verify(only[k], req, path, lower, bare, end, q)) return this.#entries[only[k]];
      }
      return null;
    }
    for (let k = 0; k < n; k++) heads[k] = 0;
    for (;;) {
      let best = -1;
      let bestK = -1;
      for (let k = 0; k < n; k++) {
        const list = lists[k];
        const h = heads[k];
        if (h < list.length && (best < 0 || list[h] < best)) {
          best = list[h];
          bestK = k;
        }
      }
      if (best < 0) return null;
      heads[bestK]++;
      if (this.#verify(best, req, path, lower, bare, end, q)) return this.#entries[best];
    }
  }

  /** The same answer as match(), by checking every route in order (for tests and benchmarks). */
  matchLinear(req: RouteRequest): T | null {
    this.#random = -1;
    const path = req.path;
    const end = pathEnd(path);
    const bare = path.slice(0, end);
    const lower = this.#hasCi ? path.toLowerCase() : path;
    const q = end < path.length && path.charCodeAt(end) === 63 ? end + 1 : -1;
    for (let i = 0; i < this.#matches.length; i++) {
      const m = this.#matches[i];
      const p = m.caseSensitive ? path : lower;
      const len = m.value.length;
      switch (m.kind) {
        case PathKind.Prefix:
        case PathKind.SeparatedPrefix:
          if (len > end || !p.startsWith(m.value)) continue;
          break;
        case PathKind.Path:
          if (len !== end || !p.startsWith(m.value)) continue;
          break;
      }
      if (this.#verify(i, req, path, lower, bare, end, q)) return this.#entries[i];
    }
    return null;
  }

  /**
   * Every route in config order with why it does not match `req`, ending with the first that does (admin
   * `/debug/route`; never called per request). `random` is the runtime_fraction draw (as `match` draws it).
   */
  explain(req: RouteRequest, random: number): RouteAttempt<T>[] {
    const out: RouteAttempt<T>[] = [];
    const path = req.path;
    const end = pathEnd(path);
    const bare = path.slice(0, end);
    const lower = path.toLowerCase();
    const q = end < path.length && path.charCodeAt(end) === 63 ? end + 1 : -1;
    for (let i = 0; i < this.#matches.length; i++) {
      const reason = explainMatch(this.#matches[i], req, path, lower, bare, end, q, random);
      out.push({ index: i, entry: this.#entries[i], matched: reason === null, reason: reason ?? "matched" });
      if (reason === null) break;
    }
    return out;
  }

  #verify(i: number, req: RouteRequest, path: string, lower: string, bare: string, end: number, q: number) {
    const m = this.#matches[i];
    if (m.kind === PathKind.Regex) {
      if (!m.regex!.test(bare)) return false;
    } else if (m.kind === PathKind.SeparatedPrefix) {
      const len = m.value.length;
      if (len !== end && (m.caseSensitive ? path : lower).charCodeAt(len) !== 47 /* / */) return false;
    }
    for (const h of m.headers) if (!h.match(req)) return false;
    for (const qm of m.query) if (!qm.match(path, q)) return false;
    const rf = m.runtimeFraction;
    if (rf !== undefined) {
      // 10^12 is a multiple of every FractionalPercent denominator: the draw is uniform modulo each
      if (this.#random < 0) this.#random = Math.floor(Math.random() * 1e12);
      if (!runtime().fractionEnabled(rf.key, rf.numerator, rf.denominator, this.#random)) return false;
    }
    if (m.grpc === true && !isGrpcContentType(req.headers.get("content-type"))) return false;
    return true;
  }
}

/** One route tried by RouteIndex.explain. */
export interface RouteAttempt<T> {
  /** Position of the route in its virtual host. */
  index: number;
  entry: T;
  matched: boolean;
  /** "matched", or why not: "prefix '/api' does not match path '/x'", "header matcher x-a exact 'b' failed". */
  reason: string;
}

/** Why `m` does not match, or null when it does (the same tests as RouteIndex's verify, with words). */
function explainMatch(
  m: CompiledMatch,
  req: RouteRequest,
  path: string,
  lower: string,
  bare: string,
  end: number,
  q: number,
  random: number,
): string | null {
  const p = m.caseSensitive ? path : lower;
  const ci = m.caseSensitive ? "" : " (case-insensitive)";
  const shown = path.slice(0, end);
  switch (m.kind) {
    case PathKind.Prefix:
      if (m.value.length > end || !p.startsWith(m.value)) {
        return `prefix '${m.value}'${ci} does not match path '${shown}'`;
      }
      break;
    case PathKind.Path:
      if (m.value.length !== end || !p.startsWith(m.value)) return `path '${m.value}'${ci} != '${shown}'`;
      break;
    case PathKind.SeparatedPrefix: {
      const len = m.value.length;
      if (len > end || !p.startsWith(m.value) || (len !== end && p.charCodeAt(len) !== 47)) {
        return `path_separated_prefix '${m.value}'${ci} does not match path '${shown}'`;
      }
      break;
    }
    default:
      if (!m.regex!.test(bare)) {
        return `safe_regex '${
          m.regex!.source.replace(/^\^\(\?:|\)\$$/g, "")
        }' does not match path '${shown}'`;
      }
  }
  for (const h of m.headers) if (!h.match(req)) return `header matcher ${h.description} failed`;
  for (const qm of m.query) if (!qm.match(path, q)) return `query parameter matcher ${qm.description} failed`;
  const rf = m.runtimeFraction;
  if (rf !== undefined && !runtime().fractionEnabled(rf.key, rf.numerator, rf.denominator, random)) {
    return `runtime_fraction '${rf.key}' (${rf.numerator}/${rf.denominator} by default) not enabled for this draw`;
  }
  if (m.grpc === true && !isGrpcContentType(req.headers.get("content-type"))) {
    return `grpc: content-type '${req.headers.get("content-type") ?? ""}' is not gRPC`;
  }
  return null;
}
