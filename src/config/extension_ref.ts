// deno-lint-ignore-file no-explicit-any -- extensions of every config type live in one registry; typed at their use sites
/**
 * `{name, typed_config}` references to registered extensions, validated in the same pass as the
 * surrounding config: the extension's own schema parses typed_config and its issues keep their path.
 */
import { z } from "zod/mini";
import { type PathSegment, UNKNOWN_FIELD } from "./errors.ts";
import { dropNullFields } from "./normalize.ts";
import { transformWithIssues } from "./schema_util.ts";
import { type Extension, type ExtensionCategory, registry } from "../registry/registry.ts";

/** A resolved extension reference: the extension and its parsed config. */
export interface ExtensionRef<C = any> {
  /** Name given in the config (or the extension's own name). */
  name: string;
  /** The registered extension. */
  ext: Extension<C, any>;
  /** The parsed typed_config (without "@type"). */
  config: C;
}

/** `@type` of the wrappers carrying another message as a Struct: `{type_url, value}`. */
const TYPED_STRUCT_RE = /^type\.googleapis\.com\/(udpa\.type\.v1|xds\.type\.v3)\.TypedStruct$/;

/** The message inside a typed_config: its @type, its fields and the path prefix of those fields. */
interface Payload {
  typeUrl: string | undefined;
  typePath: PathSegment[];
  fields: Record<string, unknown>;
  fieldsPath: PathSegment[];
}

/** Unwraps a TypedStruct (`{type_url, value}`); any other typed_config is its own payload. */
function payloadOf(tc: Record<string, unknown> | undefined, ctx: z.core.$RefinementCtx): Payload | undefined {
  const typeUrl = tc?.["@type"] as string | undefined;
  const { "@type": _t, ...rest } = tc ?? {};
  if (!typeUrl || !TYPED_STRUCT_RE.test(typeUrl)) {
    return { typeUrl, typePath: ["typed_config", "@type"], fields: rest, fieldsPath: ["typed_config"] };
  }
  const { type_url, value, ...extra } = rest;
  let ok = true;
  const issue = (path: PathSegment[], message: string) => {
    ctx.addIssue({ code: "custom", path: ["typed_config", ...path], message });
    ok = false;
  };
  for (const k of Object.keys(extra)) issue([k], UNKNOWN_FIELD);
  if (typeof type_url !== "string" || type_url === "") issue(["type_url"], "Missing required field");
  if (value !== undefined && (typeof value !== "object" || value === null || Array.isArray(value))) {
    issue(["value"], "Invalid input: expected object");
  }
  if (!ok) return undefined;
  // a Struct payload: null means "not set" once it is read as the extension's message
  const fields = (dropNullFields(value ?? {}) ?? {}) as Record<string, unknown>;
  const url = (type_url as string).includes("/") ? type_url as string : `type.googleapis.com/${type_url}`;
  return {
    typeUrl: url,
    typePath: ["typed_config", "type_url"],
    fields,
    fieldsPath: ["typed_config", "value"],
  };
}

/**
 * A schema for `{name, typed_config}` resolving to an ExtensionRef of `category`. As in Envoy, a known `@type`
 * selects the extension (whatever `name` says), an unknown one is an error, and `name` alone selects by name.
 * A TypedStruct typed_config is read as the message its `type_url` names.
 */
export function typedExtension(category: ExtensionCategory): z.ZodMiniType<ExtensionRef> {
  const what = category.replace("_", " ");
  return z.pipe(
    z.strictObject({
      name: z.optional(z.string().check(z.minLength(1))),
      typed_config: z.optional(z.looseObject({ "@type": z.string().check(z.minLength(1)) })),
      disabled: z.optional(z.boolean()),
      is_optional: z.optional(z.boolean()),
    }),
    transformWithIssues((v, ctx) => {
      const payload = payloadOf(v.typed_config, ctx as z.core.$RefinementCtx);
      if (!payload) return z.NEVER;
      const { typeUrl } = payload;
      if (!typeUrl && v.name === undefined) {
        ctx.addIssue({ code: "custom", path: ["name"], message: "Missing required field" });
        return z.NEVER;
      }
      const ext = typeUrl
        ? registry.find(category, undefined, typeUrl)
        : registry.find(category, v.name, undefined);
      if (!ext) {
        ctx.addIssue({
          code: "custom",
          path: typeUrl ? payload.typePath : ["name"],
          message: typeUrl
            ? `Unknown or unsupported ${what} type "${typeUrl}"`
            : `Unknown or unsupported ${what} "${v.name}"`,
        });
        return z.NEVER;
      }
      if (v.disabled) {
        ctx.addIssue({ code: "custom", path: ["disabled"], message: "Field not supported by nuncio" });
        return z.NEVER;
      }
      const r = ext.schema.safeParse(payload.fields);
      if (!r.success) {
        for (const issue of r.error.issues) {
          ctx.addIssue({
            code: "custom",
            path: [...payload.fieldsPath, ...issue.path],
            message: issue.message,
          });
        }
        return z.NEVER;
      }
      return { name: v.name ?? ext.name, ext, config: r.data };
    }),
  ) as unknown as z.ZodMiniType<ExtensionRef>;
}
