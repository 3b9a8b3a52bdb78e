/**
 * The protobuf descriptors of Envoy's xDS API (generated into descriptors.ts by tools/gen_xds_descriptors.ts),
 * turned into a protobufjs Root on first use only: importing this module does no work (the JSON stays a string until then).
 */
import protobuf from "protobufjs";
import { DESCRIPTORS_JSON } from "./descriptors.ts";

/** A message could not be decoded (malformed bytes, unknown type, too deep): the update is NACKed with it. */
export class XdsDecodeError extends Error {
  override name = "XdsDecodeError";
}

/** A JSON object could not be encoded as the message it names (unknown field, type or value). */
export class XdsEncodeError extends Error {
  override name = "XdsEncodeError";
}

/**
 * A plain Uint8Array view of `bytes` (no copy). protobufjs reads a Node Buffer leniently (a string running past
 * the end is cut short, not an error) and hands out nested bytes as Buffers, so every decode goes through this.
 */
export function plainBytes(bytes: Uint8Array): Uint8Array {
  return Object.getPrototypeOf(bytes) === Uint8Array.prototype
    ? bytes
    : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

let root: protobuf.Root | undefined;

/** The Root of every generated descriptor, built on the first call (~30 ms) and kept. */
export function xdsRoot(): protobuf.Root {
  root ??= protobuf.Root.fromJSON(JSON.parse(DESCRIPTORS_JSON) as protobuf.INamespace);
  return root;
}

const typeCache = new Map<string, protobuf.Type | null>();

/** The message type a type URL names (only the part after the last "/" counts, as in Envoy); undefined if unknown. */
export function typeOfUrl(typeUrl: string): protobuf.Type | undefined {
  const name = typeUrl.slice(typeUrl.lastIndexOf("/") + 1);
  let t = typeCache.get(name);
  if (t === undefined) {
    t = null;
    if (/^[A-Za-z_][\w.]*$/.test(name)) {
      try {
        const found = xdsRoot().lookup(name);
        if (found instanceof protobuf.Type) t = found;
      } catch {
        // not a known message
      }
    }
    typeCache.set(name, t);
  }
  return t ?? undefined;
}

/** The message type of a full name, e.g. "envoy.service.discovery.v3.DiscoveryRequest"; throws when unknown. */
export function messageType(fullName: string): protobuf.Type {
  const t = typeOfUrl(fullName);
  if (!t) throw new Error(`Message type ${fullName} is not in the xDS descriptors`);
  return t;
}
