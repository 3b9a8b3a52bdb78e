/**
 * Config of envoy.filters.http.header_mutation (envoy.extensions.filters.http.header_mutation.v3.HeaderMutation and
 * HeaderMutationPerRoute): request and response header mutations (envoy.config.common.mutation_rules.v3
 * .HeaderMutation: remove, append, remove_on_match). Query parameter and trailer mutations are not supported.
 */
import { z } from "zod/mini";
import { headerValueOption } from "../../../../config/common.ts";
import { NOT_SUPPORTED } from "../../../../config/errors.ts";
import { notSupportedFields } from "../../../../config/schema_util.ts";
import { checkedStringMatcher, exactlyOne } from "../../../../http/routing/config_util.ts";
import { parseFormat } from "../../../../http/routing/formatter.ts";

/**
 * The schemas, built the first time a config uses this extension: zod objects cost every isolate (main and
 * each worker) memory, and most bootstraps never name this extension.
 */
function build() {
  /** Why nuncio cannot touch `name` here (pseudo-headers and Host are request fields, not headers); else undefined. */
  function unmodifiable(name: string): string | undefined {
    const n = name.toLowerCase();
    return n.startsWith(":") || n === "host"
      ? `${NOT_SUPPORTED}: header_mutation of pseudo-headers and host ("${name}")`
      : undefined;
  }

  /** envoy.config.common.mutation_rules.v3.HeaderMutation: exactly one action. */
  const headerMutation = z.strictObject({
    remove: z.optional(z.string()),
    append: z.optional(headerValueOption),
    remove_on_match: z.optional(z.strictObject({ key_matcher: checkedStringMatcher })),
  }).check(z.superRefine((m, ctx) => {
    exactlyOne(m, ["remove", "append", "remove_on_match"], ctx);
    if (m.remove !== undefined) {
      const bad = unmodifiable(m.remove);
      if (bad) ctx.addIssue({ code: "custom", path: ["remove"], message: bad });
    }
    const a = m.append;
    if (a === undefined) return;
    const bad = unmodifiable(a.header.key);
    if (bad) ctx.addIssue({ code: "custom", path: ["append", "header", "key"], message: bad });
    if (a.append !== undefined && a.append_action !== undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["append", "append"],
        message: "Both append and append_action are set",
      });
    }
    try {
      parseFormat(a.header.value);
    } catch (e) {
      ctx.addIssue({ code: "custom", path: ["append", "header", "value"], message: (e as Error).message });
    }
  }));

  /** header_mutation.v3.Mutations. */
  const mutations = z.strictObject({
    request_mutations: z._default(z.array(headerMutation), []),
    response_mutations: z._default(z.array(headerMutation), []),
    ...notSupportedFields([
      "query_parameter_mutations",
      "response_trailers_mutations",
      "request_trailers_mutations",
    ]),
  });

  /** HeaderMutation: the filter's mutations, applied before every route level's. */
  const headerMutationSchema = z.strictObject({
    mutations: z.optional(mutations),
    /** True: route levels apply least specific first, so the most specific one wins. */
    most_specific_header_mutations_wins: z._default(z.boolean(), false),
  });

  /** HeaderMutationPerRoute. */
  const headerMutationPerRouteSchema = z.strictObject({ mutations: z.optional(mutations) });

  return { headerMutationSchema, headerMutationPerRouteSchema, headerMutation, mutations };
}

type Schemas = ReturnType<typeof build>;
let built: Schemas | undefined;
const schemas = (): Schemas => built ??= build();

/** See build(). */
export const headerMutationSchema: Schemas["headerMutationSchema"] = z.lazy(() =>
  schemas().headerMutationSchema
) as unknown as Schemas["headerMutationSchema"];

/** See build(). */
export const headerMutationPerRouteSchema: Schemas["headerMutationPerRouteSchema"] = z.lazy(() =>
  schemas().headerMutationPerRouteSchema
) as unknown as Schemas["headerMutationPerRouteSchema"];

/** A parsed mutation_rules HeaderMutation. */
export type HeaderMutationRule = z.output<Schemas["headerMutation"]>;

/** A parsed Mutations. */
export type MutationsConfig = z.output<Schemas["mutations"]>;

/** A parsed HeaderMutation. */
export type HeaderMutationConfig = z.output<Schemas["headerMutationSchema"]>;

/** A parsed HeaderMutationPerRoute. */
export type HeaderMutationPerRouteConfig = z.output<Schemas["headerMutationPerRouteSchema"]>;
