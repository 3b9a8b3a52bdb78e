// @ts-check
// @ts-self-types="./index.d.ts"
/**
 * @nuncio/client: call other services through the local nuncio egress listener, with Envoy's timeout and
 * retry headers, and carry the incoming request's x-request-id and trace headers on. Plain ESM JavaScript
 * with JSDoc types (checked by `deno check`) so the same files run in Deno and Node 20 with no build step;
 * index.d.ts is the published type surface.
 */
export {
  call,
  closeSharedClient,
  DEFAULT_EGRESS,
  egressAddress,
  NuncioClient,
  parseEgress,
} from "./client.js";
export { currentHeaders, nuncioContext, PROPAGATED_HEADERS, requestId, withIncoming } from "./context.js";
export { expectOk, ProxyError, proxyOutcome } from "./outcome.js";
