/**
 * Envoy's REST-JSON xDS from an XdsSource: `POST /v3/discovery:listeners|routes|clusters|endpoints|secrets`
 * with a JSON DiscoveryRequest. The answer is 200 with a JSON DiscoveryResponse (`version_info` the same content
 * hash the gRPC servers send, `resources` JSON Any objects with "@type", `type_url`, `nonce`), or 304 with an
 * empty body when the request's version_info is already the current version (Envoy's REST client takes it as
 * "no change"), 400 for a malformed body or one without a node, 404 for another path, 503 when the source
 * fails. Transport-free: the control plane's HTTP app calls `restDiscovery` with the path and body.
 *
 * Mesh reports: every poll is `connected` under a stream id stable per node and type (`rest:<node id>:<type>`,
 * no `disconnected`: REST has no connection to end), a 200 is `sent`. REST has no ACK: a poll whose
 * version_info is the current version is reported as an ACK of it, one with error_detail as a NACK (with its
 * version_info, the client's last accepted version, as gRPC NACKs are).
 */
import { Logger } from "../common/log.ts";
import { decodeAny } from "../xds/codec/proto_json.ts";
import { TYPE_URLS, type XdsNode } from "../xds/types.ts";
import { type MeshObserver, SECRET_TYPE_URL, type XdsSource } from "./types.ts";
import { contentVersion, nodeInfo, report, sortedEntries } from "./xds_delta_stream.ts";

const log = new Logger("control-plane");

/** The REST paths and the type each serves. */
export const REST_PATHS: Readonly<Record<string, string>> = {
  "/v3/discovery:listeners": TYPE_URLS.listener,
  "/v3/discovery:routes": TYPE_URLS.route,
  "/v3/discovery:clusters": TYPE_URLS.cluster,
  "/v3/discovery:endpoints": TYPE_URLS.endpoint,
  "/v3/discovery:secrets": SECRET_TYPE_URL,
};

/** The HTTP answer to one REST xDS request. */
export interface RestAnswer {
  status: number;
  body: string;
  contentType?: string;
}

let nonces = 0;

function text(status: number, body: string): RestAnswer {
  return { status, body: body + "\n", contentType: "text/plain; charset=utf-8" };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Answers one REST-JSON DiscoveryRequest (`POST <path>` with `body`); see the file comment. Never throws. */
export async function restDiscovery(
  source: XdsSource,
  mesh: MeshObserver,
  path: string,
  body: string,
): Promise<RestAnswer> {
  const type = Object.hasOwn(REST_PATHS, path) ? REST_PATHS[path] : undefined;
  if (type === undefined) return text(404, `no xDS resource type at ${path}`);
  let req: unknown;
  try {
    req = JSON.parse(body);
  } catch (e) {
    return text(400, `malformed DiscoveryRequest: ${(e as Error).message}`);
  }
  if (!isObject(req)) return text(400, "malformed DiscoveryRequest: not an object");
  if (!isObject(req.node)) return text(400, "DiscoveryRequest has no node");
  if (req.type_url !== undefined && req.type_url !== "" && req.type_url !== type) {
    return text(400, `type_url ${String(req.type_url)} is not ${type}`);
  }
  const names = req.resource_names ?? [];
  if (!Array.isArray(names) || !names.every((n) => typeof n === "string")) {
    return text(400, "malformed DiscoveryRequest: resource_names is not a list of strings");
  }
  const given = req.version_info ?? "";
  if (typeof given !== "string") return text(400, "malformed DiscoveryRequest: version_info is not a string");
  const error = isObject(req.error_detail) ? req.error_detail : undefined;
  const node = nodeInfo(req.node as XdsNode);
  report(() => mesh.connected(node, `rest:${node.id}:${type}`, "rest"));
  let current;
  try {
    current = await source.resolve(node, type, names.length === 0 ? null : [...new Set(names)].sort());
  } catch (e) {
    log.warn(`REST xDS: resolving ${type} for node ${node.id} failed: ${(e as Error).message}`);
    return text(503, "resources unavailable");
  }
  const entries = sortedEntries(current);
  const version = contentVersion(entries);
  if (error) {
    const message = typeof error.message === "string" ? error.message : "";
    log.warn(`NACK (REST) from node ${node.id} of ${type} version ${given}: ${message}`);
    report(() => mesh.nacked(node, type, given, message));
  } else if (given === version) report(() => mesh.acked(node, type, version));
  if (given === version) return { status: 304, body: "" };
  const resources: unknown[] = [];
  try {
    for (const [, e] of entries) resources.push(decodeAny(e.any.type_url, e.any.value));
  } catch (e) {
    log.error(`REST xDS: a ${type} resource does not decode: ${(e as Error).message}`);
    return text(500, "a resource could not be encoded as JSON");
  }
  const res = { version_info: version, resources, type_url: type, nonce: String(++nonces) };
  report(() => mesh.sent(node, type, version));
  return { status: 200, body: JSON.stringify(res), contentType: "application/json" };
}
