/** envoy.config.bootstrap.v3.LayeredRuntime: the bootstrap's `layered_runtime` (RTDS layers are not supported). */
import { z } from "zod/mini";
import { NOT_SUPPORTED } from "../config/errors.ts";
import { staticLayerValues } from "./layers.ts";

/** RuntimeLayer.DiskLayer. */
const diskLayerSchema = z.strictObject({
  /** The symbolic link whose atomic swap (`ln -s v2 new && mv -Tf new current`) reloads the tree. */
  symlink_root: z.string().check(z.minLength(1, { error: "symlink_root must be set" })),
  subdirectory: z._default(z.string(), ""),
  /** Appends the service cluster (node.cluster, --service-cluster) to the path. */
  append_service_cluster: z._default(z.boolean(), false),
});

/** A google.protobuf.Struct runtime layer whose leaves Envoy accepts (no null, no list). */
const staticLayerSchema = z.record(z.string(), z.unknown()).check(z.superRefine((v, ctx) => {
  try {
    staticLayerValues(v);
  } catch (e) {
    ctx.addIssue({ code: "custom", message: (e as Error).message });
  }
}));

const LAYER_KINDS = ["static_layer", "disk_layer", "admin_layer", "rtds_layer"] as const;

/** envoy.config.bootstrap.v3.RuntimeLayer. */
export const runtimeLayerSchema = z.strictObject({
  name: z.string().check(z.minLength(1)),
  static_layer: z.optional(staticLayerSchema),
  disk_layer: z.optional(diskLayerSchema),
  admin_layer: z.optional(z.strictObject({})),
  rtds_layer: z.optional(z.never({ error: `${NOT_SUPPORTED}: runtime discovery (RTDS) layers` })),
}).check(z.superRefine((v, ctx) => {
  const set = LAYER_KINDS.filter((k) => v[k] !== undefined);
  if (set.length !== 1) {
    ctx.addIssue({
      code: "custom",
      path: set.length > 1 ? [set[1]] : [],
      message: `Exactly one of ${LAYER_KINDS.join(", ")} must be set`,
    });
  }
}));

/** envoy.config.bootstrap.v3.LayeredRuntime: unique layer names, at most one admin layer (Envoy's checks). */
export const layeredRuntimeSchema = z.strictObject({
  layers: z._default(z.array(runtimeLayerSchema), []),
}).check(z.superRefine((v, ctx) => {
  const names = new Set<string>();
  let admin = false;
  v.layers.forEach((l, i) => {
    if (names.has(l.name)) {
      ctx.addIssue({
        code: "custom",
        path: ["layers", i, "name"],
        message: `Duplicate layer name: ${l.name}`,
      });
    }
    names.add(l.name);
    if (l.admin_layer !== undefined) {
      if (admin) {
        ctx.addIssue({
          code: "custom",
          path: ["layers", i, "admin_layer"],
          message: "Too many admin layers specified in LayeredRuntime, at most one may be specified",
        });
      }
      admin = true;
    }
  });
}));

/** The parsed `layered_runtime`. */
export type LayeredRuntimeConfig = z.infer<typeof layeredRuntimeSchema>;
/** One parsed runtime layer. */
export type RuntimeLayerConfig = LayeredRuntimeConfig["layers"][number];
