/**
 * An ordered, multi-valued HTTP header map with lowercase names (as Envoy keeps them).
 * Pseudo-headers are not stored here; method, path, authority and status live on the request/response.
 */
export class HeaderMap {
  /** Lowercase header names, in arrival order. */
  readonly names: string[] = [];
  /** Values, parallel to `names`. */
  readonly values: string[] = [];

  /** Builds a map from `[name, value]` pairs; names are lowercased. */
  static from(pairs: Iterable<[string, string]>): HeaderMap {
    const m = new HeaderMap();
    for (const [n, v] of pairs) m.add(n, v);
    return m;
  }

  /** Number of header lines. */
  get size(): number {
    return this.names.length;
  }

  /** First value of `name` (lowercase), or undefined. */
  get(name: string): string | undefined {
    const i = this.names.indexOf(name);
    return i < 0 ? undefined : this.values[i];
  }

  /** All values of `name` (lowercase). */
  getAll(name: string): string[] {
    const out: string[] = [];
    for (let i = 0; i < this.names.length; i++) if (this.names[i] === name) out.push(this.values[i]);
    return out;
  }

  /** True when `name` (lowercase) is present. */
  has(name: string): boolean {
    return this.names.indexOf(name) >= 0;
  }

  /** Appends a header line; `name` is lowercased. */
  add(name: string, value: string): void {
    this.names.push(name.toLowerCase());
    this.values.push(value);
  }

  /** Appends a header line whose name is already lowercase (hot path). */
  addLower(name: string, value: string): void {
    this.names.push(name);
    this.values.push(value);
  }

  /** Replaces every `name` line with one line carrying `value`. */
  set(name: string, value: string): void {
    const n = name.toLowerCase();
    const i = this.names.indexOf(n);
    if (i < 0) {
      this.names.push(n);
      this.values.push(value);
      return;
    }
    this.values[i] = value;
    if (this.names.indexOf(n, i + 1) >= 0) this.#compact(n, i + 1);
  }

  /** Removes every line named `name` (lowercase); returns how many were removed. */
  remove(name: string): number {
    const i = this.names.indexOf(name);
    return i < 0 ? 0 : this.#compact(name, i);
  }

  /** Removes every line whose name starts with `prefix` (lowercase). */
  removePrefix(prefix: string): void {
    const names = this.names;
    const values = this.values;
    let w = 0;
    for (let r = 0; r < names.length; r++) {
      if (names[r].startsWith(prefix)) continue;
      names[w] = names[r];
      values[w++] = values[r];
    }
    names.length = values.length = w;
  }

  /** Drops every `name` line from index `from` on, in place (no allocation); returns how many. */
  #compact(name: string, from: number): number {
    const names = this.names;
    const values = this.values;
    let w = from;
    for (let r = from; r < names.length; r++) {
      if (names[r] === name) continue;
      names[w] = names[r];
      values[w++] = values[r];
    }
    const removed = names.length - w;
    names.length = values.length = w;
    return removed;
  }

  /** A deep copy. */
  clone(): HeaderMap {
    const m = new HeaderMap();
    m.names.push(...this.names);
    m.values.push(...this.values);
    return m;
  }

  /** Iterates `[name, value]` pairs in order. */
  *[Symbol.iterator](): IterableIterator<[string, string]> {
    for (let i = 0; i < this.names.length; i++) yield [this.names[i], this.values[i]];
  }
}
