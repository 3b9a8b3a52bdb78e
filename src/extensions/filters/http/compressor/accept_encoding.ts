/**
 * Envoy's choice of a response encoding among the compressor filters of one chain
 * (CompressorFilter::chooseEncoding): the request's accept-encoding with its q-values against the encodings of
 * the chain's compressors that allow the response's content type. Pure and deterministic, so each filter of
 * the chain reaches the decision Envoy caches in the stream's filter state; the filters cache decisions by
 * (accept-encoding, content type) since clients repeat the same header.
 */

/** One compressor filter of the chain, in filter order. */
export interface ChainCompressor {
  /** Its library's content-coding ("gzip", "br", ...). */
  readonly encoding: string;
  /** Compressor.choose_first. */
  readonly chooseFirst: boolean;
  /** Its response content types, lowercase (Envoy's defaults when none were configured). */
  readonly contentTypes: ReadonlySet<string>;
}

/** Which response stat a decision counts (Envoy's EncodingDecision::HeaderStat). */
export const HeaderStat = { NotValid: 0, Identity: 1, Wildcard: 2, ValidCompressor: 3 } as const;
/** One of HeaderStat. */
export type HeaderStat = typeof HeaderStat[keyof typeof HeaderStat];

/** The encoding chosen for a response and the stat it counts. */
export interface EncodingDecision {
  readonly encoding: string;
  readonly stat: HeaderStat;
}

const IDENTITY = "identity";
/** Number() reads these prefixes as hex, binary and octal; absl::SimpleAtof does not. */
const RADIX_PREFIX = /^[+-]?0[xXbBoO]/;
const WILDCARD = "*";

interface Allowed {
  registration: number;
  chooseFirst: boolean;
}

/** absl::SimpleAtof of a trimmed q-value: a decimal or exponent number, "inf" or "nan"; undefined otherwise. */
function parseQ(s: string): number | undefined {
  if (s === "") return undefined;
  const v = Number(s);
  if (!Number.isNaN(v)) return RADIX_PREFIX.test(s) ? undefined : Math.fround(v);
  const l = s.toLowerCase();
  return l === "nan" || l === "+nan" || l === "-nan" ? NaN : undefined;
}

/**
 * The decision for a response of content type `contentType` (cropped at ";", trimmed, lowercase; "" when the
 * response has none) to a request whose accept-encoding is `acceptEncoding` (present: a missing header never
 * gets here), given the chain's compressors in filter order.
 */
export function chooseEncoding(
  acceptEncoding: string,
  contentType: string,
  chain: readonly ChainCompressor[],
): EncodingDecision {
  // the chain's compressors allowing this content type; a later one with the same encoding is ignored
  const allowed = new Map<string, Allowed>();
  let registration = 0;
  for (const c of chain) {
    if (contentType !== "" && c.contentTypes.size > 0 && !c.contentTypes.has(contentType)) continue;
    if (!allowed.has(c.encoding)) {
      allowed.set(c.encoding, { registration: registration++, chooseFirst: c.chooseFirst });
    }
  }
  // the client's encodings: "name;q=value" tokens (an unparsable q-value drops its token)
  const pairs: [string, number][] = [];
  const ae = acceptEncoding;
  let start = 0;
  while (start < ae.length) {
    let end = ae.indexOf(",", start);
    if (end < 0) end = ae.length;
    const token = ae.slice(start, end);
    start = end + 1;
    if (token === "") continue;
    const semi = token.indexOf(";");
    const name = (semi < 0 ? token : token.slice(0, semi)).trim();
    let q = 1;
    if (semi >= 0) {
      const params = token.slice(semi + 1);
      const eq = params.indexOf("=");
      if (eq >= 0 && params.slice(0, eq).trim().toLowerCase() === "q") {
        const v = parseQ(params.slice(eq + 1).trim());
        if (v === undefined) continue;
        q = v;
      }
    }
    pairs.push([name, q]);
    // kept in `pairs` ("gzip;q=0, *" must not pick gzip through the wildcard) but never allowed
    if (q === 0) allowed.delete(name);
  }
  if (pairs.length === 0 || allowed.size === 0) return { encoding: IDENTITY, stat: HeaderStat.NotValid };
  let choice = IDENTITY;
  let best = 0;
  for (const [name, q] of pairs) {
    if (!allowed.has(name) && name !== IDENTITY && name !== WILDCARD) continue;
    if (q > best || (q === best && chooseFirstOf(allowed, name))) {
      choice = name;
      best = q;
    }
  }
  if (best === 0) return { encoding: IDENTITY, stat: HeaderStat.NotValid };
  if (choice === IDENTITY) return { encoding: IDENTITY, stat: HeaderStat.Identity };
  if (choice === WILDCARD) return { encoding: firstRegistered(allowed), stat: HeaderStat.Wildcard };
  return { encoding: choice, stat: HeaderStat.ValidCompressor };
}

/** `allowed_compressors[name].choose_first_` with std::map's operator[]: a missing name is inserted as default. */
function chooseFirstOf(allowed: Map<string, Allowed>, name: string): boolean {
  const a = allowed.get(name);
  if (a !== undefined) return a.chooseFirst;
  allowed.set(name, { registration: 0, chooseFirst: false });
  return false;
}

/** The encoding registered first; ties (entries operator[] inserted) go to the smallest name, as std::map orders. */
function firstRegistered(allowed: Map<string, Allowed>): string {
  let name = "";
  let reg = Infinity;
  for (const [n, a] of allowed) {
    if (a.registration < reg || (a.registration === reg && n < name)) {
      name = n;
      reg = a.registration;
    }
  }
  return name;
}
