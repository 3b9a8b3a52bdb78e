/** Config pieces the compression filters share. */
import { z } from "zod/mini";
import { type ExtensionRef, typedExtension } from "../../../config/extension_ref.ts";

/** A TypedExtensionConfig naming a compression library; `name` is required (it is part of the stat names). */
export function libraryRef(
  category: "compressor" | "decompressor",
): z.ZodMiniType<ExtensionRef> {
  const named = z.looseObject({ name: z.string().check(z.minLength(1)) });
  return z.pipe(named, typedExtension(category) as never) as unknown as z.ZodMiniType<ExtensionRef>;
}
