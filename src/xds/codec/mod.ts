/**
 * The xDS protobuf codec: Envoy's binary resources <-> the YAML-shaped JSON nuncio's schemas read, and the
 * discovery service messages. Import it only when a gRPC config source is configured: the descriptors (~110 KB
 * of JSON in a string) are parsed and turned into a protobufjs Root on first use.
 */
export { typeOfUrl, XdsDecodeError, XdsEncodeError, xdsRoot } from "./root.ts";
export { decodeAny, decodeMessage, durationText, UNDECODED_KEY } from "./proto_json.ts";
export { encodeAny, encodeMessage } from "./encode.ts";
export {
  decodeDeltaDiscoveryResponse,
  decodeDiscoveryRequest,
  decodeDiscoveryResponse,
  type DeltaDiscoveryRequest,
  encodeDeltaDiscoveryRequest,
  encodeDiscoveryRequest,
  encodeDiscoveryResponse,
  type RawAny,
  type RawDeltaDiscoveryResponse,
  type RawDiscoveryResponse,
  type RawResource,
  USER_AGENT_NAME,
} from "./discovery.ts";
