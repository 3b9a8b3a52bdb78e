/** zod schema of Envoy's SubstitutionFormatString (`log_format`), resolved to a LogFormatSpec. */
import { z } from "zod/mini";
import { transformWithIssues } from "../config/schema_util.ts";
import { compileFormatter, type LogFormatSpec } from "./formatter.ts";

const NOT_SUPPORTED = "Field not supported by nuncio";

const dataSource = z.strictObject({
  inline_string: z.optional(z.string()),
  filename: z.optional(z.string()),
  inline_bytes: z.optional(z.string()),
  environment_variable: z.optional(z.string()),
});

/** envoy.config.core.v3.SubstitutionFormatString; validates every operator at config time. */
export const substitutionFormatString: z.ZodMiniType<LogFormatSpec> = z.pipe(
  z.strictObject({
    text_format: z.optional(z.string()),
    text_format_source: z.optional(dataSource),
    json_format: z.optional(z.record(z.string(), z.unknown())),
    omit_empty_values: z.optional(z.boolean()),
    content_type: z.optional(z.string()),
    formatters: z.optional(z.array(z.unknown())),
    json_format_options: z.optional(z.strictObject({ sort_properties: z.optional(z.boolean()) })),
  }),
  transformWithIssues((v, ctx): LogFormatSpec => {
    const set = [v.text_format, v.text_format_source, v.json_format].filter((x) => x !== undefined).length;
    if (set !== 1) {
      ctx.addIssue({
        code: "custom",
        message: "Exactly one of text_format, text_format_source, json_format must be set",
      });
      return z.NEVER;
    }
    if (v.formatters !== undefined && v.formatters.length > 0) {
      ctx.addIssue({ code: "custom", path: ["formatters"], message: NOT_SUPPORTED });
      return z.NEVER;
    }
    const src = v.text_format_source;
    if (src) {
      for (const k of ["filename", "inline_bytes", "environment_variable"] as const) {
        if (src[k] !== undefined) {
          ctx.addIssue({ code: "custom", path: ["text_format_source", k], message: NOT_SUPPORTED });
          return z.NEVER;
        }
      }
      if (src.inline_string === undefined) {
        ctx.addIssue({ code: "custom", path: ["text_format_source"], message: "inline_string is required" });
        return z.NEVER;
      }
    }
    const spec: LogFormatSpec = {
      text: v.text_format ?? src?.inline_string,
      json: v.json_format,
      omitEmptyValues: v.omit_empty_values,
      contentType: v.content_type,
      sortProperties: v.json_format_options?.sort_properties,
    };
    const err = checkFormat(spec);
    if (err) {
      const key = v.json_format
        ? "json_format"
        : v.text_format !== undefined
        ? "text_format"
        : "text_format_source";
      ctx.addIssue({ code: "custom", path: [key], message: err });
      return z.NEVER;
    }
    return spec;
  }),
);

/** Compiles `spec` once to surface operator errors; returns the error message or undefined. */
export function checkFormat(spec: LogFormatSpec): string | undefined {
  try {
    compileFormatter(spec);
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
}
