/**
 * envoy.filters.http.header_mutation: request mutations in decodeHeaders and response mutations in encodeHeaders
 * (local replies included), each a list of remove / append (HeaderValueOption with its append_action and Envoy's
 * header formatters) / remove_on_match applied in order. The filter's own mutations go first, then every route
 * level's HeaderMutationPerRoute: most specific first, or least specific first with
 * most_specific_header_mutations_wins (so the most specific one is applied last and wins).
 */
import { Action, ACTIONS } from "../../../../http/routing/header_mutation.ts";
import type {
  HttpFilter,
  HttpFilterCallbacks,
  HttpFilterFactory,
  HttpResponse,
} from "../../../../http/filter.ts";
import { HttpFilterStatus } from "../../../../http/filter.ts";
import type { HeaderMap } from "../../../../http/headers.ts";
import {
  evaluateFormat,
  type FormatParts,
  type FormatterContext,
  parseFormat,
} from "../../../../http/routing/formatter.ts";
import { StringMatch } from "../../../../http/routing/matchers.ts";
import type { PerFilterConfig } from "../../../../http/routing/types.ts";
import type { FactoryContext } from "../../../../network/filter.ts";
import { perRouteConfig } from "../../common/config.ts";
import type {
  HeaderMutationConfig,
  HeaderMutationPerRouteConfig,
  HeaderMutationRule,
  MutationsConfig,
} from "./config.ts";

/** The canonical extension name (the default typed_per_filter_config key). */
export const HEADER_MUTATION_NAME = "envoy.filters.http.header_mutation";

const enum Kind {
  Remove,
  RemoveOnMatch,
  Append,
}

/** One mutation, compiled. */
class Op {
  readonly kind: Kind;
  /** Lowercase header name (remove, append). */
  readonly name: string = "";
  readonly matcher: StringMatch | null = null;
  /** The value's formatter parts; null when it is the literal `literal`. */
  readonly parts: FormatParts | null = null;
  readonly literal: string = "";
  readonly action: Action = Action.Append;
  readonly keepEmpty: boolean = false;

  constructor(m: HeaderMutationRule) {
    if (m.remove !== undefined) {
      this.kind = Kind.Remove;
      this.name = m.remove.toLowerCase();
    } else if (m.remove_on_match !== undefined) {
      this.kind = Kind.RemoveOnMatch;
      this.matcher = StringMatch.from(m.remove_on_match.key_matcher);
    } else {
      const a = m.append!;
      this.kind = Kind.Append;
      this.name = a.header.key.toLowerCase();
      const parts = parseFormat(a.header.value);
      if (parts.length === 1 && typeof parts[0] === "string") this.literal = parts[0];
      else this.parts = parts;
      // HeadersToAddEntry: `append` (deprecated) wins when set, else append_action (default APPEND_IF_EXISTS_OR_ADD)
      this.action = a.append !== undefined
        ? (a.append ? Action.Append : Action.OverwriteOrAdd)
        : ACTIONS[a.append_action ?? "APPEND_IF_EXISTS_OR_ADD"];
      this.keepEmpty = a.keep_empty_value ?? false;
    }
  }
}

/** One Mutations message, compiled. */
class Mutations {
  readonly request: readonly Op[];
  readonly response: readonly Op[];
  constructor(c: MutationsConfig | undefined) {
    this.request = (c?.request_mutations ?? []).map((m) => new Op(m));
    this.response = (c?.response_mutations ?? []).map((m) => new Op(m));
  }
}

/** The per-HCM factory: the filter's mutations, route levels compiled on first use. */
export class HeaderMutationFactory implements HttpFilterFactory {
  readonly terminal = false;
  readonly mutations: Mutations;
  readonly mostSpecificWins: boolean;
  /** Wall clock for %START_TIME% when the stream has no start time. */
  readonly now: () => number;
  readonly #perRoute = new WeakMap<object, Mutations>();
  constructor(config: HeaderMutationConfig, ctx: FactoryContext, readonly name: string) {
    this.mutations = new Mutations(config.mutations);
    this.mostSpecificWins = config.most_specific_header_mutations_wins;
    const clock = ctx.clock;
    this.now = () => clock.now();
  }

  /** The route levels' mutations in application order (empty without per-route config). */
  routeLevels(cb: HttpFilterCallbacks): Mutations[] {
    let pfc: PerFilterConfig | undefined = perRouteConfig(cb, this.name);
    if (pfc === undefined) return NO_LEVELS;
    const out: Mutations[] = [];
    // most specific first; `parent` (when the route table records it) is the next less specific level
    for (; pfc !== undefined; pfc = pfc.parent) {
      let m = this.#perRoute.get(pfc);
      if (m === undefined) {
        this.#perRoute.set(pfc, m = new Mutations((pfc.config as HeaderMutationPerRouteConfig).mutations));
      }
      out.push(m);
    }
    if (this.mostSpecificWins) out.reverse();
    return out;
  }

  createFilter(cb: HttpFilterCallbacks): HttpFilter {
    return new HeaderMutationFilter(this, cb);
  }
}

const NO_LEVELS: Mutations[] = [];

class HeaderMutationFilter implements HttpFilter {
  #levels: Mutations[] | null = null;
  #fctx: FormatterContext | null = null;
  constructor(readonly f: HeaderMutationFactory, readonly cb: HttpFilterCallbacks) {}

  decodeHeaders(_endStream: boolean): HttpFilterStatus {
    const h = this.cb.request.headers;
    this.#apply(this.f.mutations.request, h, true);
    const levels = this.#levels ??= this.f.routeLevels(this.cb);
    for (let i = 0; i < levels.length; i++) this.#apply(levels[i].request, h, true);
    return HttpFilterStatus.Continue;
  }

  encodeHeaders(res: HttpResponse, _endStream: boolean): HttpFilterStatus {
    const h = res.headers;
    this.#apply(this.f.mutations.response, h, false);
    const levels = this.#levels ??= this.f.routeLevels(this.cb);
    for (let i = 0; i < levels.length; i++) this.#apply(levels[i].response, h, false);
    return HttpFilterStatus.Continue;
  }

  #apply(ops: readonly Op[], h: HeaderMap, isRequest: boolean): void {
    for (let i = 0; i < ops.length; i++) {
      const o = ops[i];
      switch (o.kind) {
        case Kind.Remove:
          h.remove(o.name);
          break;
        case Kind.RemoveOnMatch:
          removeMatching(h, o.matcher!);
          break;
        case Kind.Append: {
          const v = o.parts === null ? o.literal : this.#format(o.parts, h, isRequest);
          if (v === "" && !o.keepEmpty) break;
          switch (o.action) {
            case Action.Append:
              h.addLower(o.name, v);
              break;
            case Action.AddIfAbsent:
              if (!h.has(o.name)) h.addLower(o.name, v);
              break;
            case Action.OverwriteIfExists:
              if (h.has(o.name)) h.set(o.name, v);
              break;
            case Action.OverwriteOrAdd:
              h.set(o.name, v);
              break;
          }
        }
      }
    }
  }

  /** Evaluates a formatted value (the formatter context is built once per stream, when first needed). */
  #format(parts: FormatParts, h: HeaderMap, isRequest: boolean): string {
    const cb = this.cb;
    const rc = cb.routeContext();
    const c = this.#fctx ??= { ...rc, request: cb.request, startTime: cb.streamInfo.startTime };
    c.upstreamHost = rc.upstreamHost;
    return evaluateFormat(parts, h, isRequest, c, this.f.now);
  }
}

/** Removes every header whose name matches (remove_on_match). */
function removeMatching(h: HeaderMap, m: StringMatch): void {
  const names = h.names;
  const values = h.values;
  let w = 0;
  for (let r = 0; r < names.length; r++) {
    if (m.match(names[r])) continue;
    names[w] = names[r];
    values[w++] = values[r];
  }
  names.length = values.length = w;
}
