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

const INTEGER_RE = /^-?\d+$/;
const NUMBER_RE = /^-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$/;

/**
 * An integer field (int32/uint32/int64/uint64 and their wrappers): a JSON number or, as the protobuf JSON mapping
 * allows (and Envoy prints 64-bit integers), a decimal string; parses to a number. Add range checks with
 * `.check(z.minimum(..))`: they apply to the parsed number.
 */
export const integer: z.ZodMiniPipe<z.ZodMiniTransform<unknown, unknown>, z.ZodMiniNumber<number>> = z.pipe(
  z.transform((v: unknown) => (typeof v === "string" && INTEGER_RE.test(v) ? Number(v) : v)),
  z.int(),
);

/** A double/float field: a JSON number or a numeric string, as the protobuf JSON mapping allows. */
export const double: z.ZodMiniPipe<z.ZodMiniTransform<unknown, unknown>, z.ZodMiniNumber<number>> = z.pipe(
  z.transform((v: unknown) => (typeof v === "string" && NUMBER_RE.test(v) ? Number(v) : v)),
  z.number(),
);

/**
 * A protobuf enum as Envoy reads it from YAML/JSON (case_insensitive_enum_parsing): the exact name, or the
 * value upper-cased (`auto` is `AUTO`); parses to the canonical name and lists the names when nothing matches.
 */
export function envoyEnum<const T extends readonly [string, ...string[]]>(
  values: T,
): z.ZodMiniPipe<z.ZodMiniTransform<unknown, unknown>, z.ZodMiniEnum<{ [K in T[number]]: K }>> {
  const names = new Set<string>(values);
  return z.pipe(
    z.transform((v: unknown) => {
      if (typeof v !== "string" || names.has(v)) return v;
      const upper = v.toUpperCase();
      return names.has(upper) ? upper : v;
    }),
    z.enum(values),
  );
}

/**
 * A field nuncio takes only at the value(s) matching what it does (Envoy configs often spell defaults out):
 * any other value fails with "Field not supported by nuncio: only <values> (<what nuncio does>)".
 */
export function onlyValues<const T extends readonly [z.core.util.Literal, ...z.core.util.Literal[]]>(
  values: T,
  what: string,
): z.ZodMiniOptional<z.ZodMiniLiteral<T[number]>> {
  const shown = values.map((v) => (v === "" ? '""' : String(v))).join(" or ");
  return z.optional(z.literal(values, { error: `${NOT_SUPPORTED}: only ${shown} (${what})` }));
}
