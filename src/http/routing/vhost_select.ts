/**
 * Virtual host selection by Host/:authority, in Envoy's order: exact domain, then the longest suffix
 * wildcard ("*.foo.com", "*-bar.foo.com"), then the longest prefix wildcard ("foo.*", "foo-*"), then
 * "*". Matching is case-insensitive and a wildcard never matches the empty string.
 *
 * Ports: like Envoy by default, "host:port" is matched literally against the domains (so a domain
 * "example.com:8080" matches that authority, and "example.com" does not match "example.com:443"),
 * with "*" catching everything. RouteConfiguration.ignore_port_in_host_matching strips the port from
 * the authority before matching. The HCM's strip_matching_host_port / strip_any_host_port rewrite the
 * Host header itself and belong to the connection manager, which calls match() after stripping.
 */

/** Removes a trailing ":port" from an authority (IPv6 "[::1]:80" aware). */
export function stripPort(host: string): string {
  if (host.charCodeAt(0) === 91 /* [ */) {
    const e = host.lastIndexOf("]:");
    return e >= 0 ? host.slice(0, e + 1) : host;
  }
  const c = host.lastIndexOf(":");
  return c >= 0 && host.indexOf(":") === c ? host.slice(0, c) : host;
}

/** Domain -> value lookup with Envoy's precedence. */
export class DomainMatcher<V> {
  #exact = new Map<string, V>();
  #suffix = new Map<string, V>();
  #suffixLens: number[] = [];
  #prefix = new Map<string, V>();
  #prefixLens: number[] = [];
  #default: V | undefined;
  #ignorePort: boolean;

  constructor(opts: { ignorePort?: boolean } = {}) {
    this.#ignorePort = opts.ignorePort ?? false;
  }

  /** Adds a domain (duplicates are rejected by the schema; the first one wins here). */
  add(domain: string, v: V): void {
    const d = domain.toLowerCase();
    if (d === "*") {
      this.#default ??= v;
    } else if (d.startsWith("*")) {
      const s = d.slice(1);
      if (!this.#suffix.has(s)) this.#suffix.set(s, v);
      if (!this.#suffixLens.includes(s.length)) this.#suffixLens.push(s.length);
      this.#suffixLens.sort((a, b) => b - a);
    } else if (d.endsWith("*")) {
      const p = d.slice(0, -1);
      if (!this.#prefix.has(p)) this.#prefix.set(p, v);
      if (!this.#prefixLens.includes(p.length)) this.#prefixLens.push(p.length);
      this.#prefixLens.sort((a, b) => b - a);
    } else if (!this.#exact.has(d)) {
      this.#exact.set(d, v);
    }
  }

  /** The value for `authority`, or undefined when nothing (not even "*") matches. */
  find(authority: string): V | undefined {
    let host = authority.toLowerCase();
    if (this.#ignorePort) host = stripPort(host);
    const e = this.#exact.get(host);
    if (e !== undefined) return e;
    const n = host.length;
    for (const len of this.#suffixLens) {
      if (len >= n) continue;
      const v = this.#suffix.get(host.slice(n - len));
      if (v !== undefined) return v;
    }
    for (const len of this.#prefixLens) {
      if (len >= n) continue;
      const v = this.#prefix.get(host.slice(0, len));
      if (v !== undefined) return v;
    }
    return this.#default;
  }
}
