/**
 * Compiled request/response header mutations (request_headers_to_add/remove and the response
 * equivalents) across the weighted-cluster, route, virtual host and route configuration levels.
 */
import type { HeaderValueOption } from "../../config/common.ts";
import type { HeaderMap } from "../headers.ts";
import { evaluateFormat, type FormatParts, type FormatterContext, parseFormat } from "./formatter.ts";
import type { HeaderMutation, RouteContext } from "./types.ts";

/** The mutations of one level (route, virtual host, ...) as configured. */
export interface MutationLevel {
  readonly add?: readonly HeaderValueOption[];
  readonly remove?: readonly string[];
}

/** What adding a HeaderValueOption does (Envoy's HeaderAppendAction); shared with the header_mutation filter. */
export const Action = { Append: 0, AddIfAbsent: 1, OverwriteOrAdd: 2, OverwriteIfExists: 3 } as const;
/** One of Action's values. */
export type Action = (typeof Action)[keyof typeof Action];

/** `append_action` names to their Action. */
export const ACTIONS: Readonly<Record<string, Action>> = {
  APPEND_IF_EXISTS_OR_ADD: Action.Append,
  ADD_IF_ABSENT: Action.AddIfAbsent,
  OVERWRITE_IF_EXISTS_OR_ADD: Action.OverwriteOrAdd,
  OVERWRITE_IF_EXISTS: Action.OverwriteIfExists,
};

interface AddOp {
  readonly name: string;
  readonly parts: FormatParts;
  readonly action: Action;
  readonly keepEmpty: boolean;
}

interface LevelOps {
  readonly removes: readonly string[];
  readonly adds: readonly AddOp[];
}

/** The message Envoy gives for touching a pseudo-header or Host; undefined when `name` may be modified. */
export function unmodifiableHeaderError(name: string): string | undefined {
  const n = name.toLowerCase();
  return n.startsWith(":") || n === "host" ? "':-prefixed' or host headers may not be modified" : undefined;
}

/** Validates one HeaderValueOption; returns [path suffix, message] pairs for each problem. */
export function headerValueOptionIssues(o: HeaderValueOption): [string[], string][] {
  const issues: [string[], string][] = [];
  const bad = unmodifiableHeaderError(o.header.key);
  if (bad) issues.push([["header", "key"], bad]);
  if (o.append !== undefined && o.append_action !== undefined) {
    issues.push([["append"], "Both append and append_action are set, only one may be"]);
  }
  try {
    parseFormat(o.header.value);
  } catch (e) {
    issues.push([["header", "value"], (e as Error).message]);
  }
  return issues;
}

const scratchNames: string[] = [];
const scratchValues: string[] = [];

class CompiledMutation implements HeaderMutation {
  readonly empty: boolean;
  #levels: readonly LevelOps[];
  #isRequest: boolean;
  #now: () => number;

  constructor(levels: readonly LevelOps[], isRequest: boolean, now: () => number) {
    this.#levels = levels;
    this.#isRequest = isRequest;
    this.#now = now;
    this.empty = levels.length === 0;
  }

  apply(headers: HeaderMap, ctx: RouteContext): void {
    const fctx = ctx as FormatterContext;
    for (const level of this.#levels) {
      for (const r of level.removes) headers.remove(r);
      let over = 0;
      for (const a of level.adds) {
        const v = evaluateFormat(a.parts, headers, this.#isRequest, fctx, this.#now);
        if (v === "" && !a.keepEmpty) continue;
        switch (a.action) {
          case Action.Append:
            headers.addLower(a.name, v);
            break;
          case Action.AddIfAbsent:
            if (!headers.has(a.name)) headers.addLower(a.name, v);
            break;
          case Action.OverwriteIfExists:
            if (!headers.has(a.name)) break;
          // falls through
          case Action.OverwriteOrAdd:
            scratchNames[over] = a.name;
            scratchValues[over++] = v;
            break;
        }
      }
      // Overwrites of one level are applied together, so two entries for one key both survive (as Envoy).
      for (let i = 0; i < over; i++) headers.remove(scratchNames[i]);
      for (let i = 0; i < over; i++) headers.addLower(scratchNames[i], scratchValues[i]);
    }
  }
}

const levelCache = new WeakMap<MutationLevel, LevelOps | null>();

function compileLevel(level: MutationLevel): LevelOps | undefined {
  const cached = levelCache.get(level);
  if (cached !== undefined) return cached ?? undefined;
  const removes = (level.remove ?? []).map((n) => n.toLowerCase());
  const adds = (level.add ?? []).map((o): AddOp => {
    const action = o.append_action !== undefined
      ? ACTIONS[o.append_action]
      : o.append === false
      ? Action.OverwriteOrAdd
      : Action.Append;
    return {
      name: o.header.key.toLowerCase(),
      parts: parseFormat(o.header.value),
      action,
      keepEmpty: o.keep_empty_value ?? false,
    };
  });
  const ops = removes.length || adds.length ? { removes, adds } : null;
  levelCache.set(level, ops);
  return ops ?? undefined;
}

/**
 * Compiles levels (in application order) into one HeaderMutation; `now` feeds %START_TIME%. A level
 * object passed again (shared by many routes) is compiled once.
 */
export function compileMutation(
  levels: readonly MutationLevel[],
  opts: { isRequest: boolean; now: () => number },
): HeaderMutation {
  const ops: LevelOps[] = [];
  for (const l of levels) {
    const c = compileLevel(l);
    if (c) ops.push(c);
  }
  return new CompiledMutation(ops, opts.isRequest, opts.now);
}
