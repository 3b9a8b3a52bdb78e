/**
 * envoy.service.discovery.v3 messages on the wire: DiscoveryRequest/DeltaDiscoveryRequest from their JSON form
 * (xds/types.ts), DiscoveryResponse/DeltaDiscoveryResponse to plain objects whose resources stay undecoded
 * `{type_url, value}` so each is decoded (and rejected) on its own with `decodeAny`.
 */
import type { DiscoveryRequest, ErrorDetail, XdsNode } from "../types.ts";
import { messageType, plainBytes, XdsDecodeError } from "./root.ts";
import { messageToJson } from "./proto_json.ts";
import { encodeMessage } from "./encode.ts";

/** user_agent_name sent when the node does not say. */
export const USER_AGENT_NAME = "nuncio";

const PKG = "envoy.service.discovery.v3.";

/** A google.protobuf.Any left as bytes: decode `value` with `decodeAny(type_url, value)`. */
export interface RawAny {
  type_url: string;
  value: Uint8Array;
}

/** A DiscoveryResponse off the wire; `resources` undecoded. */
export interface RawDiscoveryResponse {
  version_info: string;
  resources: RawAny[];
  type_url: string;
  nonce: string;
  canary?: boolean;
  control_plane?: { identifier?: string };
}

/** envoy.service.discovery.v3.DeltaDiscoveryRequest in its JSON form. */
export interface DeltaDiscoveryRequest {
  node?: XdsNode;
  type_url: string;
  resource_names_subscribe?: string[];
  resource_names_unsubscribe?: string[];
  initial_resource_versions?: Record<string, string>;
  response_nonce?: string;
  error_detail?: ErrorDetail;
}

/** One envoy.service.discovery.v3.Resource of a delta response; `resource` undecoded (absent for a TTL-only one). */
export interface RawResource {
  name: string;
  aliases?: string[];
  version: string;
  resource?: RawAny;
  /** Duration text, e.g. "30s". */
  ttl?: string;
}

/** A DeltaDiscoveryResponse off the wire. */
export interface RawDeltaDiscoveryResponse {
  system_version_info: string;
  resources: RawResource[];
  type_url: string;
  removed_resources: string[];
  nonce: string;
}

function withAgent<T extends { node?: XdsNode }>(req: T): T {
  if (!req.node || req.node.user_agent_name) return req;
  return { ...req, node: { ...req.node, user_agent_name: USER_AGENT_NAME } };
}

/** Encodes a DiscoveryRequest (sent on every subscribe, ACK and NACK); throws XdsEncodeError on a bad field. */
export function encodeDiscoveryRequest(req: DiscoveryRequest): Uint8Array {
  return encodeMessage(messageType(PKG + "DiscoveryRequest"), withAgent(req));
}

/** Encodes a DeltaDiscoveryRequest; throws XdsEncodeError on a bad field. */
export function encodeDeltaDiscoveryRequest(req: DeltaDiscoveryRequest): Uint8Array {
  return encodeMessage(messageType(PKG + "DeltaDiscoveryRequest"), withAgent(req));
}

// deno-lint-ignore no-explicit-any -- protobufjs messages are untyped property bags
type Msg = any;

function decodeRaw(name: string, bytes: Uint8Array): Msg {
  try {
    return messageType(PKG + name).decode(plainBytes(bytes));
  } catch (e) {
    throw new XdsDecodeError(`Malformed ${name}: ${(e as Error).message}`);
  }
}

function rawAny(a: Msg): RawAny {
  return { type_url: a.type_url ?? "", value: plainBytes(a.value ?? new Uint8Array()) };
}

/** Decodes a DiscoveryResponse (resources left as bytes); throws XdsDecodeError on malformed bytes. */
export function decodeDiscoveryResponse(bytes: Uint8Array): RawDiscoveryResponse {
  const m = decodeRaw("DiscoveryResponse", bytes);
  const out: RawDiscoveryResponse = {
    version_info: m.version_info ?? "",
    resources: (m.resources ?? []).map(rawAny),
    type_url: m.type_url ?? "",
    nonce: m.nonce ?? "",
  };
  if (m.canary) out.canary = true;
  if (m.control_plane) out.control_plane = { identifier: m.control_plane.identifier ?? "" };
  return out;
}

/** Decodes a DeltaDiscoveryResponse (each resource's Any left as bytes); throws XdsDecodeError. */
export function decodeDeltaDiscoveryResponse(bytes: Uint8Array): RawDeltaDiscoveryResponse {
  const m = decodeRaw("DeltaDiscoveryResponse", bytes);
  const ttlType = messageType("google.protobuf.Duration");
  return {
    system_version_info: m.system_version_info ?? "",
    type_url: m.type_url ?? "",
    nonce: m.nonce ?? "",
    removed_resources: [...(m.removed_resources ?? [])],
    resources: (m.resources ?? []).map((r: Msg): RawResource => {
      const out: RawResource = { name: r.name ?? "", version: r.version ?? "" };
      if (r.aliases?.length) out.aliases = [...r.aliases];
      if (r.resource) out.resource = rawAny(r.resource);
      if (r.ttl) out.ttl = messageToJson(ttlType, r.ttl) as string;
      return out;
    }),
  };
}

/** Decodes a DiscoveryRequest into its JSON form (the server side: tests and the control plane). */
export function decodeDiscoveryRequest(bytes: Uint8Array): DiscoveryRequest {
  const t = messageType(PKG + "DiscoveryRequest");
  return messageToJson(t, decodeRaw("DiscoveryRequest", bytes)) as unknown as DiscoveryRequest;
}

/** Encodes a DiscoveryResponse whose resources are already encoded (the server side: tests, control plane). */
export function encodeDiscoveryResponse(res: RawDiscoveryResponse): Uint8Array {
  const t = messageType(PKG + "DiscoveryResponse");
  return t.encode(t.fromObject(res as unknown as Record<string, unknown>)).finish();
}

/** Decodes a DeltaDiscoveryRequest into its JSON form (the server side); throws XdsDecodeError. */
export function decodeDeltaDiscoveryRequest(bytes: Uint8Array): DeltaDiscoveryRequest {
  const t = messageType(PKG + "DeltaDiscoveryRequest");
  return messageToJson(t, decodeRaw("DeltaDiscoveryRequest", bytes)) as unknown as DeltaDiscoveryRequest;
}

/** A DeltaDiscoveryResponse to send, resources already encoded (the server side). */
export interface OutgoingDeltaResponse {
  system_version_info: string;
  type_url: string;
  nonce: string;
  removed_resources: string[];
  resources: { name: string; version: string; resource: RawAny }[];
}

/** Encodes a DeltaDiscoveryResponse (the server side: the registry and the control plane). */
export function encodeDeltaDiscoveryResponse(res: OutgoingDeltaResponse): Uint8Array {
  const t = messageType(PKG + "DeltaDiscoveryResponse");
  return t.encode(t.fromObject(res as unknown as Record<string, unknown>)).finish();
}
