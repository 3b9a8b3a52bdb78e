/** Config of envoy.access_loggers.file (FileAccessLog). */
import { z } from "zod/mini";
import { transformWithIssues } from "../../../config/schema_util.ts";
import { substitutionFormatString } from "../../../access_log/format_config.ts";
import { checkFormat } from "../../../access_log/format_config.ts";
import type { LogFormatSpec } from "../../../access_log/formatter.ts";

/** The parsed FileAccessLog: the path and the resolved format (undefined = Envoy's default). */
export interface FileAccessLogConfig {
  path: string;
  format: LogFormatSpec | undefined;
}

/**
 * FileAccessLog: `path` plus one of `log_format`, or the deprecated `format` (text) and
 * `json_format` / `typed_json_format` (struct) fields.
 */
export const fileAccessLogSchema: z.ZodMiniType<FileAccessLogConfig> = z.pipe(
  z.strictObject({
    path: z.string().check(z.minLength(1)),
    log_format: z.optional(substitutionFormatString),
    format: z.optional(z.string()),
    json_format: z.optional(z.record(z.string(), z.unknown())),
    typed_json_format: z.optional(z.record(z.string(), z.unknown())),
  }),
  transformWithIssues((v, ctx): FileAccessLogConfig => {
    const given = (["log_format", "format", "json_format", "typed_json_format"] as const).filter((k) =>
      v[k] !== undefined
    );
    if (given.length > 1) {
      ctx.addIssue({
        code: "custom",
        path: [given[1]],
        message: `Only one of ${given.join(", ")} may be set`,
      });
      return z.NEVER;
    }
    let format: LogFormatSpec | undefined = v.log_format;
    if (v.format !== undefined) format = { text: v.format };
    const json = v.json_format ?? v.typed_json_format;
    if (json) format = { json };
    if (format && given[0] !== "log_format") {
      const err = checkFormat(format);
      if (err) {
        ctx.addIssue({ code: "custom", path: [given[0]], message: err });
        return z.NEVER;
      }
    }
    return { path: v.path, format };
  }),
) as unknown as z.ZodMiniType<FileAccessLogConfig>;
