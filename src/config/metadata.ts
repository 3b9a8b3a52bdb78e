/**
 * zod schemas for envoy.config.core.v3.Metadata and google.protobuf.Struct as config carries them (endpoint
 * metadata, route metadata_match, the subset load balancer's default_subset). Struct payloads are kept as parsed
 * JSON (proto3 JSON mapping: a Struct is a plain object, its values any JSON value).
 */
import { z } from "zod/mini";
import { notSupportedFields } from "./schema_util.ts";

/** A google.protobuf.Struct: field name -> JSON value. */
export type Struct = Readonly<Record<string, unknown>>;

/** A plain JSON object (not an array, not null). */
function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** google.protobuf.Struct: any JSON object, kept as is. */
export const structSchema: z.ZodMiniType<Struct> = z.custom<Struct>(isPlainObject, {
  error: "Expected a Struct (an object of JSON values)",
});

/** envoy.config.core.v3.Metadata: filter_metadata by namespace (typed_filter_metadata is not supported). */
export const metadataSchema = z.strictObject({
  filter_metadata: z._default(z.record(z.string(), structSchema), {}),
  ...notSupportedFields(["typed_filter_metadata"]),
});

/** A parsed Metadata. */
export type MetadataConfig = z.output<typeof metadataSchema>;

/** The namespace of load balancer metadata (subset selection, route metadata_match). */
export const ENVOY_LB = "envoy.lb";
