/**
 * Config of envoy.filters.http.header_to_metadata (envoy.extensions.filters.http.header_to_metadata.v3.Config, also
 * its per-route message), with Envoy's rule checks and messages.
 */
import { z } from "zod/mini";
import { envoyEnum } from "../../../../config/schema_util.ts";
import { regexMatchAndSubstitute } from "../../../../http/routing/config_util.ts";

/**
 * The schemas, built the first time a config uses this extension: zod objects cost every isolate (main and
 * each worker) memory, and most bootstraps never name this extension.
 */
function build() {
  /** Config.KeyValuePair. */
  const keyValuePair = z.strictObject({
    /** Empty: the filter's own namespace (envoy.filters.http.header_to_metadata). */
    metadata_namespace: z._default(z.string(), ""),
    key: z.string().check(z.minLength(1)),
    /** Non-empty: used instead of the header's value. */
    value: z._default(z.string(), ""),
    /** on_header_present only: rewrites the header's value (global replace). */
    regex_value_rewrite: z.optional(regexMatchAndSubstitute),
    type: z._default(envoyEnum(["STRING", "NUMBER", "PROTOBUF_VALUE"]), "STRING"),
    encode: z._default(envoyEnum(["NONE", "BASE64"]), "NONE"),
  });

  /** Config.Rule: a header or a cookie, what to set when it is present or missing, and whether to remove it. */
  const rule = z.strictObject({
    header: z._default(z.string(), ""),
    cookie: z._default(z.string(), ""),
    on_header_present: z.optional(keyValuePair),
    on_header_missing: z.optional(keyValuePair),
    remove: z._default(z.boolean(), false),
  }).check(z.superRefine((r, ctx) => {
    // Envoy's Rule constructor, in its order and with its messages
    const fail = (message: string) => ctx.addIssue({ code: "custom", path: [], message });
    if (r.cookie !== "" && r.header !== "") {
      return fail("Cannot specify both header and cookie in the same rule");
    }
    if (r.cookie === "" && r.header === "") {
      return fail("One of Cookie or Header option needs to be specified");
    }
    if (r.on_header_present === undefined && r.on_header_missing === undefined) {
      return fail(
        `header to metadata filter: rule for ${r.header ? `header '${r.header}'` : `cookie '${r.cookie}'`} ` +
          "has neither `on_header_present` nor `on_header_missing` set",
      );
    }
    if (r.on_header_present?.value && r.on_header_present.regex_value_rewrite !== undefined) {
      return fail("Cannot specify both value and regex_value_rewrite");
    }
    if (r.cookie !== "" && r.remove) return fail("Cannot specify remove for cookie");
    if (r.on_header_missing !== undefined && r.on_header_missing.value === "") {
      return fail("Cannot specify on_header_missing rule with an empty value");
    }
  }));

  const shape = {
    request_rules: z._default(z.array(rule), []),
    response_rules: z._default(z.array(rule), []),
    /** Set: stats under `http_filter_name.<stat_prefix>.` (none otherwise). */
    stat_prefix: z._default(z.string(), ""),
  };

  /** The filter's Config (empty rule lists are fine here: routes may bring their own). */
  const headerToMetadataSchema = z.strictObject(shape);

  /** The per-route Config: the same message, with at least one rule. */
  const headerToMetadataPerRouteSchema = z.strictObject(shape).check(z.refine(
    (c) => c.request_rules.length > 0 || c.response_rules.length > 0,
    {
      error:
        "header_to_metadata_filter: Per filter configs must at least specify either request or response rules",
    },
  ));

  return { headerToMetadataSchema, headerToMetadataPerRouteSchema, keyValuePair, rule };
}

type Schemas = ReturnType<typeof build>;
let built: Schemas | undefined;
const schemas = (): Schemas => built ??= build();

/** See build(). */
export const headerToMetadataSchema: Schemas["headerToMetadataSchema"] = z.lazy(() =>
  schemas().headerToMetadataSchema
) as unknown as Schemas["headerToMetadataSchema"];

/** See build(). */
export const headerToMetadataPerRouteSchema: Schemas["headerToMetadataPerRouteSchema"] = z.lazy(() =>
  schemas().headerToMetadataPerRouteSchema
) as unknown as Schemas["headerToMetadataPerRouteSchema"];

/** A parsed KeyValuePair. */
export type KeyValuePairConfig = z.output<Schemas["keyValuePair"]>;

/** A parsed Rule. */
export type RuleConfig = z.output<Schemas["rule"]>;

/** A parsed Config. */
export type HeaderToMetadataConfig = z.output<Schemas["headerToMetadataSchema"]>;
