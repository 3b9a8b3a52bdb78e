/**
 * The AccessLog wrapper of Envoy configs (`{name, filter?, typed_config}`), used by the HTTP
 * connection manager and tcp_proxy `access_log` lists, and the helper building filtered loggers.
 */
import { z } from "zod/mini";
import { transformWithIssues } from "../config/schema_util.ts";
import type { StreamInfo } from "../common/stream_info.ts";
import { type ExtensionRef, typedExtension } from "../config/extension_ref.ts";
import type { FactoryContext } from "../network/filter.ts";
import {
  type AccessLogFilter,
  type AccessLogFilterConfig,
  accessLogFilterSchema,
  compileFilter,
} from "./filter.ts";
import type { AccessLogger, AccessLoggerCreate } from "./types.ts";

/** One parsed `access_log` entry. */
export interface AccessLogEntry {
  /** The access logger extension and its parsed typed_config. */
  readonly ref: ExtensionRef;
  /** The optional filter. */
  readonly filter?: AccessLogFilterConfig;
}

let refSchema: z.ZodMiniType<ExtensionRef> | undefined;

/** envoy.config.accesslog.v3.AccessLog: typed_config resolved through the registry, plus `filter`. */
export const accessLogEntrySchema: z.ZodMiniType<AccessLogEntry> = z.pipe(
  z.unknown(),
  transformWithIssues((v, ctx) => {
    if (typeof v !== "object" || v === null || Array.isArray(v)) {
      ctx.addIssue({ code: "custom", message: "Expected an object" });
      return z.NEVER;
    }
    const { filter, ...rest } = v as Record<string, unknown>;
    let ok = true;
    let parsedFilter: AccessLogFilterConfig | undefined;
    if (filter !== undefined) {
      const r = accessLogFilterSchema.safeParse(filter);
      if (r.success) parsedFilter = r.data;
      else {
        ok = false;
        for (const i of r.error.issues) {
          ctx.addIssue({ code: "custom", path: ["filter", ...i.path], message: i.message });
        }
      }
    }
    refSchema ??= typedExtension("access_logger");
    const r = refSchema.safeParse(rest);
    if (!r.success) {
      for (const i of r.error.issues) ctx.addIssue({ code: "custom", path: i.path, message: i.message });
      return z.NEVER;
    }
    if (!ok) return z.NEVER;
    return parsedFilter ? { ref: r.data, filter: parsedFilter } : { ref: r.data };
  }),
) as unknown as z.ZodMiniType<AccessLogEntry>;

/** Logs only what the filter lets through. */
class FilteredAccessLogger implements AccessLogger {
  readonly #inner: AccessLogger;
  readonly #filter: AccessLogFilter;
  readonly usesTlsFacts: boolean;
  constructor(inner: AccessLogger, filter: AccessLogFilter) {
    this.#inner = inner;
    this.#filter = filter;
    this.usesTlsFacts = inner.usesTlsFacts === true;
    if (inner.reopen) this.reopen = () => inner.reopen!();
  }
  log(info: StreamInfo): void {
    if (this.#filter.evaluate(info)) this.#inner.log(info);
  }
  close(): Promise<void> {
    return this.#inner.close();
  }
  reopen?: () => void;
}

/** Builds the loggers of an `access_log` list for one config snapshot (filters applied). */
export function createAccessLogs(entries: readonly AccessLogEntry[], ctx: FactoryContext): AccessLogger[] {
  return entries.map((e) => {
    const logger = (e.ref.ext.create as AccessLoggerCreate<unknown>)(e.ref.config, ctx);
    return e.filter ? new FilteredAccessLogger(logger, compileFilter(e.filter, ctx.clock)) : logger;
  });
}

/** True when some logger prints SNI or TLS version/cipher/session id (a factory's `needsTlsFacts`). */
export function anyUsesTlsFacts(loggers: readonly AccessLogger[]): boolean {
  return loggers.some((l) => l.usesTlsFacts === true);
}

/** Logs one finished stream to every logger (call once per stream). */
export function logAll(loggers: readonly AccessLogger[], info: StreamInfo): void {
  for (let i = 0; i < loggers.length; i++) loggers[i].log(info);
}
