/** HPACK static table (RFC 7541 Appendix A) and the dynamic table shared by the encoder and decoder. */

const STATIC_TEXT =
  ":authority|:method GET|:method POST|:path /|:path /index.html|:scheme http|:scheme https|" +
  ":status 200|:status 204|:status 206|:status 304|:status 400|:status 404|:status 500|accept-charset|" +
  "accept-encoding gzip, deflate|accept-language|accept-ranges|accept|access-control-allow-origin|age|allow|" +
  "authorization|cache-control|content-disposition|content-encoding|content-language|content-length|" +
  "content-location|content-range|content-type|cookie|date|etag|expect|expires|from|host|if-match|" +
  "if-modified-since|if-none-match|if-range|if-unmodified-since|last-modified|link|location|max-forwards|" +
  "proxy-authenticate|proxy-authorization|range|referer|refresh|retry-after|server|set-cookie|" +
  "strict-transport-security|transfer-encoding|user-agent|vary|via|www-authenticate";

/** Number of static table entries. */
export const STATIC_COUNT = 61;
/** Static entry names; index 0 unused (HPACK indices start at 1). */
export const STATIC_NAMES: readonly string[] = [""];
/** Static entry values, parallel to STATIC_NAMES. */
export const STATIC_VALUES: readonly string[] = [""];
/** First static index of each name. */
export const STATIC_NAME_INDEX: ReadonlyMap<string, number> = new Map();
/** Static index of each name and value pair that has one. */
export const STATIC_PAIR_INDEX: ReadonlyMap<string, ReadonlyMap<string, number>> = new Map();

{
  const names = STATIC_NAMES as string[];
  const values = STATIC_VALUES as string[];
  const byName = STATIC_NAME_INDEX as Map<string, number>;
  const pairs = STATIC_PAIR_INDEX as Map<string, Map<string, number>>;
  for (const entry of STATIC_TEXT.split("|")) {
    const sp = entry.indexOf(" ");
    const name = sp < 0 ? entry : entry.slice(0, sp);
    const value = sp < 0 ? "" : entry.slice(sp + 1);
    const i = names.length;
    names.push(name);
    values.push(value);
    if (!byName.has(name)) byName.set(name, i);
    if (value !== "") {
      let m = pairs.get(name);
      if (!m) pairs.set(name, m = new Map());
      m.set(value, i);
    }
  }
}

/** Size of an entry as HPACK counts it (RFC 7541 §4.1): octets of name and value plus 32. */
export function entrySize(name: string, value: string): number {
  return name.length + value.length + 32;
}

/** The HPACK dynamic table: a ring of entries, newest at index 1, evicted oldest first. */
export class DynamicTable {
  #names: string[];
  #values: string[];
  #cap: number;
  #head = 0;
  /** Entries in the table. */
  count = 0;
  /** Current size in HPACK octets. */
  size = 0;
  /** Current maximum size (changed by size updates). */
  maxSize: number;

  /** Makes a table that can hold up to `maxSize` octets. */
  constructor(maxSize: number) {
    this.maxSize = maxSize;
    this.#cap = Math.max(8, Math.floor(maxSize / 32) + 1);
    this.#names = new Array(this.#cap).fill("");
    this.#values = new Array(this.#cap).fill("");
  }

  /** Name of dynamic entry `i` (1 = newest); the caller checks `i <= count`. */
  name(i: number): string {
    return this.#names[(this.#head - i + this.#cap) % this.#cap];
  }

  /** Value of dynamic entry `i` (1 = newest). */
  value(i: number): string {
    return this.#values[(this.#head - i + this.#cap) % this.#cap];
  }

  /** Inserts an entry, evicting as needed; an entry larger than the table empties it (RFC 7541 §4.4). */
  add(name: string, value: string): void {
    const sz = entrySize(name, value);
    if (sz > this.maxSize) {
      while (this.count > 0) this.#evict();
      return;
    }
    while (this.size + sz > this.maxSize) this.#evict();
    if (this.count === this.#cap) this.#grow();
    this.#names[this.#head] = name;
    this.#values[this.#head] = value;
    this.#head = (this.#head + 1) % this.#cap;
    this.count++;
    this.size += sz;
  }

  /** Changes the maximum size, evicting down to it. */
  resize(maxSize: number): void {
    this.maxSize = maxSize;
    while (this.size > maxSize) this.#evict();
  }

  /** Called with each evicted entry (the encoder overrides it to keep its index in step). */
  protected evicted(_name: string, _value: string): void {}

  #evict(): void {
    const tail = (this.#head - this.count + this.#cap) % this.#cap;
    const n = this.#names[tail];
    const v = this.#values[tail];
    this.#names[tail] = "";
    this.#values[tail] = "";
    this.count--;
    this.size -= entrySize(n, v);
    this.evicted(n, v);
  }

  #grow(): void {
    const names: string[] = [];
    const values: string[] = [];
    for (let i = this.count; i >= 1; i--) {
      names.push(this.name(i));
      values.push(this.value(i));
    }
    const cap = this.#cap * 2;
    while (names.length < cap) {
      names.push("");
      values.push("");
    }
    this.#names = names;
    this.#values = values;
    this.#head = this.count;
    this.#cap = cap;
  }
}
