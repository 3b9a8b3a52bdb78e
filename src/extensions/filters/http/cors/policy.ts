/**
 * CORS policies compiled at config time: one `CorsPolicy` per declaration (a typed_per_filter_config entry or
 * the deprecated `cors` field of a virtual host or route), and the `EffectiveCors` of a route, which resolves
 * each field over the route's policies as Envoy's CorsFilter does: the most specific policy that sets a field
 * gives it; `filter_enabled`/`shadow_enabled` come from the most specific policy alone.
 */
import type { StringMatcherConfig } from "../../../../config/common.ts";
import type { HeaderMap } from "../../../../http/headers.ts";
import { StringMatch } from "../../../../http/routing/matchers.ts";
import { runtime } from "../../../../runtime/current.ts";
import { Fraction } from "../../common/config.ts";

/** A RuntimeFractionalPercent as parsed (the runtime key is kept for a later runtime lookup). */
export interface RuntimePercent {
  default_value: { numerator: number; denominator: "HUNDRED" | "TEN_THOUSAND" | "MILLION" };
  runtime_key?: string;
}

/**
 * A RuntimeFractionalPercent: the runtime value of its key when the runtime has one (a FractionalPercent or an
 * integer percent, as Envoy's featureEnabled), else its default_value.
 */
export class RuntimeFraction {
  readonly #key: string;
  readonly #fallback: Fraction;

  constructor(p: RuntimePercent | undefined, fallbackPercent: number) {
    this.#key = p?.runtime_key ?? "";
    this.#fallback = Fraction.of(p?.default_value, fallbackPercent);
  }

  /** True for the configured share of the calls (one draw per call). */
  hit(): boolean {
    const f = this.#fallback;
    return this.#key === "" ? f.hit() : runtime().fractionEnabled(this.#key, f.numerator, f.denominator);
  }
}

/** The fields of envoy.extensions.filters.http.cors.v3.CorsPolicy (and of route.v3.CorsPolicy) as parsed. */
export interface CorsPolicyFields {
  allow_origin_string_match: StringMatcherConfig[];
  allow_methods: string;
  allow_headers: string;
  expose_headers: string;
  max_age: string;
  allow_credentials?: boolean;
  filter_enabled?: RuntimePercent;
  shadow_enabled?: RuntimePercent;
  allow_private_network_access?: boolean;
  forward_not_matching_preflights?: boolean;
}

/** One CORS policy declaration, compiled: matchers built, unset fields empty or undefined. */
export class CorsPolicy {
  /** The origin matchers; empty when the policy sets none. */
  readonly allowOrigins: readonly StringMatch[];
  /** True when a matcher matches the string "*": every origin is allowed (Envoy's rule). */
  readonly allowsAnyOrigin: boolean;
  readonly allowMethods: string;
  readonly allowHeaders: string;
  readonly exposeHeaders: string;
  readonly maxAge: string;
  readonly allowCredentials: boolean | undefined;
  readonly allowPrivateNetworkAccess: boolean | undefined;
  readonly forwardNotMatchingPreflights: boolean | undefined;
  /** filter_enabled; undefined means enabled for every request. */
  readonly filterEnabled: RuntimeFraction | undefined;
  /** shadow_enabled; undefined means never. */
  readonly shadowEnabled: RuntimeFraction | undefined;

  /** Compiles parsed fields (safe_regex already checked by the schema). */
  constructor(c: CorsPolicyFields) {
    this.allowOrigins = c.allow_origin_string_match.map((m) => StringMatch.from(m));
    this.allowsAnyOrigin = this.allowOrigins.some((m) => m.match("*"));
    this.allowMethods = c.allow_methods;
    this.allowHeaders = c.allow_headers;
    this.exposeHeaders = c.expose_headers;
    this.maxAge = c.max_age;
    this.allowCredentials = c.allow_credentials;
    this.allowPrivateNetworkAccess = c.allow_private_network_access;
    this.forwardNotMatchingPreflights = c.forward_not_matching_preflights;
    this.filterEnabled = c.filter_enabled ? new RuntimeFraction(c.filter_enabled, 100) : undefined;
    this.shadowEnabled = c.shadow_enabled ? new RuntimeFraction(c.shadow_enabled, 0) : undefined;
  }
}

const ALWAYS = new RuntimeFraction(undefined, 100);
const NEVER = new RuntimeFraction(undefined, 0);

function first<T>(policies: readonly CorsPolicy[], get: (p: CorsPolicy) => T | undefined, empty: T): T {
  for (const p of policies) {
    const v = get(p);
    if (v !== undefined && v !== "") return v;
  }
  return empty;
}

/** The CORS settings of one route: its policies (most specific first) resolved field by field, once. */
export class EffectiveCors {
  readonly #origins: readonly StringMatch[];
  readonly #anyOrigin: boolean;
  readonly allowMethods: string;
  readonly allowHeaders: string;
  readonly exposeHeaders: string;
  readonly maxAge: string;
  readonly allowCredentials: boolean;
  readonly allowPrivateNetworkAccess: boolean;
  /** Defaults to true, as Envoy's. */
  readonly forwardNotMatchingPreflights: boolean;
  /** From the most specific policy (100 % when it does not set filter_enabled). */
  readonly enabled: RuntimeFraction;
  /** From the most specific policy (0 % when it does not set shadow_enabled). */
  readonly shadow: RuntimeFraction;

  /** Resolves `policies`, most specific first (route, virtual host, route configuration); at least one. */
  constructor(policies: readonly CorsPolicy[]) {
    const withOrigins = policies.find((p) => p.allowOrigins.length > 0);
    this.#origins = withOrigins?.allowOrigins ?? [];
    this.#anyOrigin = withOrigins?.allowsAnyOrigin ?? false;
    this.allowMethods = first(policies, (p) => p.allowMethods, "");
    this.allowHeaders = first(policies, (p) => p.allowHeaders, "");
    this.exposeHeaders = first(policies, (p) => p.exposeHeaders, "");
    this.maxAge = first(policies, (p) => p.maxAge, "");
    this.allowCredentials = first(policies, (p) => p.allowCredentials, false);
    this.allowPrivateNetworkAccess = first(policies, (p) => p.allowPrivateNetworkAccess, false);
    this.forwardNotMatchingPreflights = first(policies, (p) => p.forwardNotMatchingPreflights, true);
    this.enabled = policies[0].filterEnabled ?? ALWAYS;
    this.shadow = policies[0].shadowEnabled ?? NEVER;
  }

  /** True when `origin` (non-empty) is allowed: a matcher matches it, or one matches "*". */
  originAllowed(origin: string): boolean {
    if (this.#anyOrigin) return true;
    const list = this.#origins;
    for (let i = 0; i < list.length; i++) if (list[i].match(origin)) return true;
    return false;
  }

  /**
   * The headers of the local preflight answer (200, no body) for a request with `origin`, in Envoy's order;
   * `allowed` says whether the origin matched (without a match, no access-control-allow-origin).
   */
  preflightHeaders(req: HeaderMap, origin: string, allowed: boolean): [string, string][] {
    const out: [string, string][] = [];
    if (allowed) out.push(["access-control-allow-origin", origin]);
    if (this.allowCredentials) out.push(["access-control-allow-credentials", "true"]);
    if (this.allowMethods !== "") {
      out.push([
        "access-control-allow-methods",
        this.allowMethods === "*" ? req.get("access-control-request-method") ?? "" : this.allowMethods,
      ]);
    }
    if (this.allowHeaders !== "") {
      out.push([
        "access-control-allow-headers",
        this.allowHeaders === "*"
          ? req.getAll("access-control-request-headers").join(",")
          : this.allowHeaders,
      ]);
    }
    if (this.maxAge !== "") out.push(["access-control-max-age", this.maxAge]);
    if (this.allowPrivateNetworkAccess && req.get("access-control-request-private-network") === "true") {
      out.push(["access-control-allow-private-network", "true"]);
    }
    return out;
  }

  /** Sets the headers of a response to an allowed CORS request (`origin` is the latched request Origin). */
  applyToResponse(res: HeaderMap, origin: string): void {
    res.set("access-control-allow-origin", origin);
    if (this.allowCredentials) res.set("access-control-allow-credentials", "true");
    if (this.exposeHeaders !== "") res.set("access-control-expose-headers", this.exposeHeaders);
  }
}
