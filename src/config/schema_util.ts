/** Small schema helpers for Envoy fields nuncio knows of but does not implement. */
import { z } from "zod";
import { NOT_SUPPORTED } from "./errors.ts";

/** A field that must be absent: present, it fails with "Field not supported by nuncio". */
export const notSupported: z.ZodOptional<z.ZodNever> = z.never({ error: NOT_SUPPORTED }).optional();

/** Builds an object shape marking each named field as not supported (spread it into a strictObject). */
export function notSupportedFields<const K extends string>(
  names: readonly K[],
): Record<K, typeof notSupported> {
  const shape = {} as Record<K, typeof notSupported>;
  for (const n of names) shape[n] = notSupported;
  return shape;
}
