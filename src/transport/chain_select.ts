/**
 * Envoy's filter chain selection: candidates are narrowed criterion by criterion (destination port, server
 * name, transport protocol, application protocols); at each step the most specific match wins and chains
 * without that criterion are the fallback. Built once per listener, run once per connection.
 */

/** The match criteria of one filter chain (the parsed FilterChainMatch subset nuncio implements). */
export interface ChainMatch {
  /** destination_port, undefined when any. */
  destinationPort?: number;
  /** server_names, lower-cased ("*.example.com" for wildcards); empty when any. */
  serverNames: readonly string[];
  /** transport_protocol: "tls", "raw_buffer" or "" for any. */
  transportProtocol: string;
  /** application_protocols; empty when any. */
  applicationProtocols: readonly string[];
}

/** What is known about a connection when its chain is chosen. */
export interface ConnectionFacts {
  /** Local port the connection arrived on. */
  port: number;
  /** SNI ("" when none or not TLS). */
  sni: string;
  /** "tls" or "raw_buffer". */
  transport: string;
  /** ALPN protocols offered by the client. */
  alpn: readonly string[];
}

/** True when a listener must look at the first bytes (SNI, ALPN, TLS or not) to choose a chain. */
export function needsInspection(matches: readonly ChainMatch[]): boolean {
  return matches.some((m) =>
    m.serverNames.length > 0 || m.transportProtocol !== "" || m.applicationProtocols.length > 0
  );
}

/** Returns a message when two chains have the same matching rules (config time), else undefined. */
export function findDuplicateMatch(
  matches: readonly ChainMatch[],
): { index: number; message: string } | undefined {
  const seen = new Map<string, number>();
  for (let i = 0; i < matches.length; i++) {
    const m = matches[i];
    const names = m.serverNames.length ? m.serverNames : [""];
    const alpns = m.applicationProtocols.length ? m.applicationProtocols : [""];
    for (const n of names) {
      for (const a of alpns) {
        const key = `${m.destinationPort ?? ""}|${n}|${m.transportProtocol}|${a}`;
        const prev = seen.get(key);
        if (prev !== undefined && prev !== i) {
          return { index: i, message: "Multiple filter chains with the same matching rules are defined" };
        }
        seen.set(key, i);
      }
    }
  }
  return undefined;
}

/** Chooses the filter chain index for a connection; built once from the chains' matches. */
export class ChainSelector {
  readonly #matches: readonly ChainMatch[];
  readonly #all: number[];
  readonly #trivial: boolean;

  constructor(matches: readonly ChainMatch[]) {
    this.#matches = matches;
    this.#all = matches.map((_, i) => i);
    this.#trivial = matches.length === 1 && matches[0].destinationPort === undefined &&
      !needsInspection(matches);
  }

  /** The chosen chain's index, or -1 when no chain matches (the connection is closed). */
  select(f: ConnectionFacts): number {
    if (this.#trivial) return 0;
    const m = this.#matches;
    let c = this.#narrow(
      this.#all,
      (i) => m[i].destinationPort === undefined,
      (i) => m[i].destinationPort === f.port,
    );
    c = this.#byServerName(c, f.sni);
    c = this.#narrow(c, (i) => m[i].transportProtocol === "", (i) => m[i].transportProtocol === f.transport);
    c = this.#narrow(
      c,
      (i) => m[i].applicationProtocols.length === 0,
      (i) => m[i].applicationProtocols.some((p) => f.alpn.includes(p)),
    );
    return c.length > 0 ? c[0] : -1;
  }

  #narrow(c: number[], isAny: (i: number) => boolean, hit: (i: number) => boolean): number[] {
    const exact = c.filter((i) => !isAny(i) && hit(i));
    return exact.length > 0 ? exact : c.filter(isAny);
  }

  #byServerName(c: number[], sni: string): number[] {
    const m = this.#matches;
    if (sni !== "") {
      const exact = c.filter((i) => m[i].serverNames.includes(sni));
      if (exact.length > 0) return exact;
      // longest wildcard suffix first: a.b.example.com tries *.b.example.com, then *.example.com, ...
      for (let dot = sni.indexOf("."); dot >= 0; dot = sni.indexOf(".", dot + 1)) {
        const wild = `*${sni.slice(dot)}`;
        const hit = c.filter((i) => m[i].serverNames.includes(wild));
        if (hit.length > 0) return hit;
      }
    }
    return c.filter((i) => m[i].serverNames.length === 0);
  }
}

/**
 * Why chain `m` fits `f`, for debug logs: "server name 'a.example.com' (*.example.com), transport tls, ALPN
 * h2"; "no match criteria (default chain)" for a catch-all. Runs only with debug logging on.
 */
export function explainChain(m: ChainMatch, f: ConnectionFacts): string {
  const why: string[] = [];
  if (m.destinationPort !== undefined) why.push(`destination port ${f.port}`);
  if (m.serverNames.length > 0) {
    const hit = m.serverNames.includes(f.sni)
      ? f.sni
      : m.serverNames.find((n) => n.startsWith("*") && f.sni.endsWith(n.slice(1))) ?? "?";
    why.push(`server name '${f.sni}' (${hit})`);
  }
  if (m.transportProtocol !== "") why.push(`transport ${f.transport}`);
  if (m.applicationProtocols.length > 0) {
    why.push(`ALPN ${m.applicationProtocols.filter((p) => f.alpn.includes(p)).join(",")}`);
  }
  const offered = `(client: port ${f.port}, sni '${f.sni}', transport ${f.transport}, alpn [${
    f.alpn.join(",")
  }])`;
  return `${why.length > 0 ? why.join(", ") : "no match criteria (default chain)"} ${offered}`;
}
