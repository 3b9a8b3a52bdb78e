/** Config of envoy.filters.http.buffer (envoy.extensions.filters.http.buffer.v3.Buffer and BufferPerRoute). */
import { z } from "zod/mini";
import { uint32 } from "../../../../config/common.ts";

/** The Buffer message. */
export const bufferSchema = z.strictObject({
  max_request_bytes: uint32.check(z.minimum(1)),
});

/** The parsed Buffer config. */
export type BufferConfig = z.infer<typeof bufferSchema>;

/** The BufferPerRoute message: exactly one of `disabled: true` or `buffer`. */
export const bufferPerRouteSchema = z.strictObject({
  disabled: z.optional(z.literal(true)),
  buffer: z.optional(bufferSchema),
}).check(z.refine((v) => (v.disabled !== undefined) !== (v.buffer !== undefined), {
  message: "Exactly one of disabled, buffer must be set",
}));

/** The parsed BufferPerRoute config. */
export type BufferPerRouteConfig = z.infer<typeof bufferPerRouteSchema>;
