/**
 * A strict JSON syntax check (RFC 8259) that reports the offset of the first error. The YAML parser
 * reads JSON too and gives node ranges, but it accepts things JSON does not (empty values, comments,
 * unquoted keys), so JSON files go through this check first.
 */

/** A JSON syntax error at a 0-based offset. */
export interface JsonSyntaxError {
  /** 0-based offset into the text. */
  offset: number;
  /** What is wrong. */
  message: string;
}

class Fail {
  constructor(readonly offset: number, readonly message: string) {}
}

const MAX_DEPTH = 1000;

/** Runs once per JSON config load: returns the first syntax error, or undefined when `text` is valid JSON. */
export function checkJsonSyntax(text: string): JsonSyntaxError | undefined {
  const s = new Scanner(text);
  try {
    s.ws();
    s.value(0);
    s.ws();
    if (s.i < text.length) throw new Fail(s.i, `Unexpected ${describe(text, s.i)} after the JSON value`);
    return undefined;
  } catch (e) {
    if (e instanceof Fail) return { offset: e.offset, message: e.message };
    throw e;
  }
}

function describe(text: string, i: number): string {
  if (i >= text.length) return "end of input";
  const c = text[i];
  return c === "\n" ? "line break" : `character ${JSON.stringify(c)}`;
}

class Scanner {
  i: number;
  constructor(readonly t: string) {
    this.i = t.charCodeAt(0) === 0xfeff ? 1 : 0;
  }

  ws(): void {
    const t = this.t;
    while (this.i < t.length) {
      const c = t.charCodeAt(this.i);
      if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) this.i++;
      else break;
    }
  }

  fail(expected: string): never {
    throw new Fail(this.i, `Expected ${expected}, found ${describe(this.t, this.i)}`);
  }

  value(depth: number): void {
    if (depth > MAX_DEPTH) throw new Fail(this.i, "JSON nesting is too deep");
    const c = this.t[this.i];
    if (c === "{") return this.object(depth);
    if (c === "[") return this.array(depth);
    if (c === '"') return this.string();
    if (c === "-" || (c >= "0" && c <= "9")) return this.number();
    for (const lit of ["true", "false", "null"]) {
      if (this.t.startsWith(lit, this.i)) {
        this.i += lit.length;
        return;
      }
    }
    this.fail("a JSON value");
  }

  object(depth: number): void {
    this.i++;
    this.ws();
    if (this.t[this.i] === "}") {
      this.i++;
      return;
    }
    for (;;) {
      if (this.t[this.i] !== '"') this.fail("a double-quoted key");
      this.string();
      this.ws();
      if (this.t[this.i] !== ":") this.fail('":"');
      this.i++;
      this.ws();
      this.value(depth + 1);
      this.ws();
      const c = this.t[this.i];
      if (c === "}") {
        this.i++;
        return;
      }
      if (c !== ",") this.fail('"," or "}"');
      this.i++;
      this.ws();
    }
  }

  array(depth: number): void {
    this.i++;
    this.ws();
    if (this.t[this.i] === "]") {
      this.i++;
      return;
    }
    for (;;) {
      this.value(depth + 1);
      this.ws();
      const c = this.t[this.i];
      if (c === "]") {
        this.i++;
        return;
      }
      if (c !== ",") this.fail('"," or "]"');
      this.i++;
      this.ws();
    }
  }

  string(): void {
    const t = this.t;
    const start = this.i++;
    while (this.i < t.length) {
      const c = t.charCodeAt(this.i);
      if (c === 0x22) {
        this.i++;
        return;
      }
      if (c < 0x20) throw new Fail(this.i, "Control character in string (escape it)");
      if (c === 0x5c) {
        const e = t[this.i + 1];
        if (e === "u") {
          if (!/^[0-9a-fA-F]{4}$/.test(t.slice(this.i + 2, this.i + 6))) {
            throw new Fail(this.i, "Invalid \\u escape in string");
          }
          this.i += 6;
          continue;
        }
        if (e === undefined || !'"\\/bfnrt'.includes(e)) throw new Fail(this.i, "Invalid escape in string");
        this.i += 2;
        continue;
      }
      this.i++;
    }
    throw new Fail(start, "Unterminated string");
  }

  number(): void {
    const t = this.t;
    if (t[this.i] === "-") this.i++;
    if (t[this.i] === "0") this.i++;
    else if (t[this.i] >= "1" && t[this.i] <= "9") this.digits();
    else this.fail("a digit");
    if (t[this.i] === ".") {
      this.i++;
      if (!(t[this.i] >= "0" && t[this.i] <= "9")) this.fail("a digit");
      this.digits();
    }
    if (t[this.i] === "e" || t[this.i] === "E") {
      this.i++;
      if (t[this.i] === "+" || t[this.i] === "-") this.i++;
      if (!(t[this.i] >= "0" && t[this.i] <= "9")) this.fail("a digit");
      this.digits();
    }
  }

  digits(): void {
    while (this.t[this.i] >= "0" && this.t[this.i] <= "9") this.i++;
  }
}
