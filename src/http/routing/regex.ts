/**
 * RE2 (Envoy's google_re2 engine) patterns and substitutions translated to JavaScript RegExp at config
 * time. The common RE2 syntax is also JavaScript syntax; the differences handled here are leading
 * inline flags ("(?i)", "(?s)", "(?m)"), "(?P<name>" groups, "\z", "\A" and "\Q...\E"-free patterns.
 */

/** Result of translating an RE2 pattern: JavaScript source and flags. */
export interface TranslatedRegex {
  source: string;
  flags: string;
}

const LEADING_FLAGS = /^\(\?([ims]+)\)/;

/** Translates RE2 syntax to JavaScript; throws a SyntaxError when JavaScript cannot compile it. */
export function translateRe2(pattern: string): TranslatedRegex {
  let source = pattern;
  let flags = "";
  for (;;) {
    const m = LEADING_FLAGS.exec(source);
    if (!m) break;
    for (const f of m[1]) if (!flags.includes(f)) flags += f;
    source = source.slice(m[0].length);
  }
  if (source.includes("\\Q")) throw new SyntaxError("\\Q...\\E quoting is not supported");
  source = source.replaceAll("(?P<", "(?<").replace(/\\z/g, "$").replace(/\\A/g, "^");
  // Compile once to surface syntax errors with the original message.
  new RegExp(source, flags);
  return { source, flags };
}

/** Compiles an RE2 pattern for a full match (the whole input must match), as Envoy's safe_regex does. */
export function compileFullMatch(pattern: string): RegExp {
  const t = translateRe2(pattern);
  return new RegExp(`^(?:${t.source})$`, t.flags);
}

/** Compiles an RE2 pattern for global search-and-replace (RE2::GlobalReplace). */
export function compileGlobal(pattern: string): RegExp {
  const t = translateRe2(pattern);
  return new RegExp(t.source, t.flags + "g");
}

/** Returns an error message when the pattern does not compile, else undefined (for schema checks). */
export function re2Error(pattern: string): string | undefined {
  try {
    translateRe2(pattern);
    return undefined;
  } catch (e) {
    return `Invalid regex: ${(e as Error).message}`;
  }
}

/**
 * Converts an RE2 rewrite string ("\1" groups, "\0" whole match, "\\" backslash) into a JavaScript
 * replacement string; throws when it names a group the pattern does not have.
 */
export function translateSubstitution(substitution: string, groupCount: number): string {
  let out = "";
  for (let i = 0; i < substitution.length; i++) {
    const c = substitution[i];
    if (c === "$") {
      out += "$$";
    } else if (c === "\\") {
      const n = substitution[i + 1];
      if (n === "\\") {
        out += "\\";
        i++;
      } else if (n !== undefined && n >= "0" && n <= "9") {
        const g = n.charCodeAt(0) - 48;
        if (g > groupCount) {
          throw new SyntaxError(`Substitution refers to group \\${g} the pattern does not have`);
        }
        // Two-digit form so a following literal digit is not read as part of the group number.
        out += g === 0 ? "$&" : `$0${g}`;
        i++;
      } else {
        throw new SyntaxError("Invalid escape in substitution (use \\0-\\9 or \\\\)");
      }
    } else {
      out += c;
    }
  }
  return out;
}

/** Number of capture groups of a compiled RegExp. */
export function groupCount(re: RegExp): number {
  return new RegExp(`(?:${re.source})|`, re.flags.replace("g", "")).exec("")!.length - 1;
}

const META = new Set("\\^$.|?*+()[]{}");

/**
 * The literal text every full match of `pattern` must start with ("" when unknown). Conservative:
 * patterns with inline flags or an alternation anywhere have none; a quantified last literal is dropped.
 */
export function literalPrefix(pattern: string): string {
  if (pattern.includes("|") || pattern.startsWith("(?")) return "";
  let i = 0;
  while (i < pattern.length && !META.has(pattern[i])) i++;
  const next = pattern[i];
  if (next === "?" || next === "*" || next === "{") i--;
  return i > 0 ? pattern.slice(0, i) : "";
}
