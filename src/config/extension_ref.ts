// deno-lint-ignore-file no-explicit-any -- extensions of every config type live in one registry; typed at their use sites
/**
 * `{name, typed_config}` references to registered extensions, validated in the same pass as the
 * surrounding config: the extension's own schema parses typed_config and its issues keep their path.
 */
import { z } from "zod/mini";
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

/** A schema for `{name, typed_config}` resolving to an ExtensionRef of `category`. */
export function typedExtension(category: ExtensionCategory): z.ZodMiniType<ExtensionRef> {
  return z.pipe(
    z.strictObject({
      name: z.string().check(z.minLength(1)),
      typed_config: z.optional(z.looseObject({ "@type": z.string().check(z.minLength(1)) })),
      disabled: z.optional(z.boolean()),
      is_optional: z.optional(z.boolean()),
    }),
    transformWithIssues((v, ctx) => {
      const typeUrl = v.typed_config?.["@type"];
      const ext = registry.find(category, v.name, typeUrl);
      if (!ext) {
        ctx.addIssue({
          code: "custom",
          path: typeUrl ? ["typed_config", "@type"] : ["name"],
          message: `Unknown or unsupported ${category.replace("_", " ")} "${typeUrl ?? v.name}"`,
        });
        return z.NEVER;
      }
      if (v.disabled) {
        ctx.addIssue({ code: "custom", path: ["disabled"], message: "Field not supported by nuncio" });
        return z.NEVER;
      }
      const { "@type": _t, ...rest } = v.typed_config ?? { "@type": "" };
      const r = ext.schema.safeParse(rest);
      if (!r.success) {
        for (const issue of r.error.issues) {
          ctx.addIssue({ code: "custom", path: ["typed_config", ...issue.path], message: issue.message });
        }
        return z.NEVER;
      }
      return { name: v.name, ext, config: r.data };
    }),
  ) as unknown as z.ZodMiniType<ExtensionRef>;
}
