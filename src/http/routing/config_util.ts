/** Schema pieces shared by the route configuration schemas: checked regexes, header mutation lists. */
import { z } from "zod/mini";
import { headerValueOption, regexMatcher, stringMatcher, typedAny } from "../../config/common.ts";
import { headerValueOptionIssues, unmodifiableHeaderError } from "./header_mutation.ts";
import { compileGlobal, groupCount, re2Error, translateSubstitution } from "./regex.ts";

/** A RegexMatcher whose regex must compile (the error sits on `regex`). */
export const checkedRegex = regexMatcher.check(z.superRefine((m, ctx) => {
  const err = re2Error(m.regex);
  if (err) ctx.addIssue({ code: "custom", path: ["regex"], message: err });
}));

/** A StringMatcher whose safe_regex (if any) must compile. */
export const checkedStringMatcher = stringMatcher.check(z.superRefine((m, ctx) => {
  if (!m.safe_regex) return;
  const err = re2Error(m.safe_regex.regex);
  if (err) ctx.addIssue({ code: "custom", path: ["safe_regex", "regex"], message: err });
}));

/** envoy.type.matcher.v3.RegexMatchAndSubstitute; the substitution's groups must exist in the pattern. */
export const regexMatchAndSubstitute = z.strictObject({
  pattern: checkedRegex,
  // a proto3 string without min_len: absent is "" (the match is removed)
  substitution: z._default(z.string(), ""),
}).check(z.superRefine((v, ctx) => {
  if (re2Error(v.pattern.regex)) return;
  try {
    translateSubstitution(v.substitution, groupCount(compileGlobal(v.pattern.regex)));
  } catch (e) {
    ctx.addIssue({ code: "custom", path: ["substitution"], message: (e as Error).message });
  }
}));

/** The parsed form of a RegexMatchAndSubstitute. */
export type RegexMatchAndSubstitute = z.infer<typeof regexMatchAndSubstitute>;

/** request/response_headers_to_add: at most 1000 entries, formatters and header names checked. */
export const headersToAdd = z.array(headerValueOption).check(
  z.maxLength(1000),
  z.superRefine((list, ctx) => {
    list.forEach((o, i) => {
      for (const [path, message] of headerValueOptionIssues(o)) {
        ctx.addIssue({ code: "custom", path: [i, ...path], message });
      }
    });
  }),
);

/** request/response_headers_to_remove: pseudo-headers and Host may not be removed. */
export const headersToRemove = z.array(z.string().check(z.minLength(1))).check(z.superRefine((list, ctx) => {
  list.forEach((n, i) => {
    const bad = unmodifiableHeaderError(n);
    if (bad) ctx.addIssue({ code: "custom", path: [i], message: bad });
  });
}));

/** typed_per_filter_config: filter name -> Any (parsed later by the filter itself). */
export const typedPerFilterConfig = z.record(z.string().check(z.minLength(1)), typedAny);

/** Adds an issue at `path` unless exactly one of `keys` is set on `v`. */
export function exactlyOne(
  v: Record<string, unknown>,
  keys: readonly string[],
  ctx: z.core.$RefinementCtx,
  required = true,
): void {
  const set = keys.filter((k) => v[k] !== undefined);
  if (set.length > 1) {
    ctx.addIssue({
      code: "custom",
      path: [set[1]],
      message: `Only one of ${keys.join(", ")} may be set`,
    });
  } else if (set.length === 0 && required) {
    ctx.addIssue({ code: "custom", path: [], message: `Exactly one of ${keys.join(", ")} must be set` });
  }
}
