/** Small schema helpers: Envoy fields nuncio knows of but does not implement, transforms that report issues. */
import { z } from "zod/mini";
// Every schema module imports this one: zod/mini has no error messages until zod_setup loads the English locale,
// so schemas parsed without an entry point (tests, tools) still report classic zod's messages.
import "./zod_setup.ts";
import { NOT_SUPPORTED } from "./errors.ts";

/** A field that must be absent: present, it fails with "Field not supported by nuncio". */
export const notSupported: z.ZodMiniOptional<z.ZodMiniNever> = z.optional(z.never({ error: NOT_SUPPORTED }));

/** Builds an object shape marking each named field as not supported (spread it into a strictObject). */
export function notSupportedFields<const K extends string>(
  names: readonly K[],
): Record<K, typeof notSupported> {
  const shape = {} as Record<K, typeof notSupported>;
  for (const n of names) shape[n] = notSupported;
  return shape;
}

/**
 * `z.transform` whose callback gets a `ctx.addIssue` like classic zod's `.transform((v, ctx) => ...)`: zod/mini
 * passes the bare parse payload. Issues get classic's defaults (code "custom", the input value).
 */
export function transformWithIssues<I, O>(
  fn: (input: I, ctx: z.core.$RefinementCtx<I>) => O,
): z.ZodMiniTransform<Awaited<O>, I> {
  const schema: z.ZodMiniTransform<Awaited<O>, I> = z.transform((input: I, payload: z.core.ParsePayload) => {
    const ctx = payload as z.core.$RefinementCtx<I>;
    ctx.addIssue = (issue) => {
      if (typeof issue === "string") {
        payload.issues.push({ message: issue, code: "custom", input: payload.value, inst: schema });
        return;
      }
      // as classic: `fatal` stops later checks, code defaults to "custom", input to the value being parsed
      const { fatal, ...rest } = issue as typeof issue & { fatal?: boolean };
      payload.issues.push({
        ...rest,
        code: rest.code ?? "custom",
        input: rest.input ?? payload.value,
        inst: rest.inst ?? schema,
        ...(fatal ? { continue: false } : {}),
      } as z.core.$ZodRawIssue);
    };
    return fn(input, ctx);
  });
  return schema;
}
