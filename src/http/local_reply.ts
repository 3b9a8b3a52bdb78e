/**
 * Local replies: the responses an ActiveStream makes itself (filters, timeouts, limits) instead of the
 * upstream's. A plain reply is `status` with a text/plain body; a gRPC request gets HTTP 200 with a
 * trailers-only grpc-status/grpc-message, as Envoy answers gRPC callers. Both go through the encoder filters.
 * (The HTTP/1.1 connection's own pre-stream error replies are `localReplyHead` in h1_glue.ts.)
 */
import { Logger } from "../common/log.ts";
import { formatResponseFlags, ResponseFlag } from "../common/response_flags.ts";
import type { LocalReplyOptions } from "./filter.ts";
import { HeaderMap } from "./headers.ts";
import { encodeGrpcMessage, GrpcStatus, httpToGrpcStatus, isGrpcRequest } from "./grpc_util.ts";
import type { ActiveStream } from "./active_stream.ts";

const EMPTY = new Uint8Array(0);
const log = new Logger("http");

/** @internal ActiveStream.sendLocalReply: replaces a response a filter holds; resets a started one. */
export async function sendLocalReply(
  s: ActiveStream,
  status: number,
  body: string,
  opts?: LocalReplyOptions,
): Promise<void> {
  if (s.responseStarted) {
    s.resetStream();
    return;
  }
  // a response held by an encoder filter is replaced by the local reply
  const hold = s.encHold;
  if (hold !== null) {
    hold.index = -1;
    hold.head = hold.parts = null;
    hold.bytes = 0; // a filter holding the local reply counts from zero, not from the replaced response
  }
  s.encStarted = false;
  const info = s.streamInfo;
  if (opts?.flags) info.responseFlags |= opts.flags;
  if (opts?.details) info.responseCodeDetails = opts.details;
  if (log.enabled("debug")) {
    log.debug(
      `${info.logPrefix()}Sending local reply ${status} with details '${info.responseCodeDetails}' ` +
        `flags ${formatResponseFlags(info.responseFlags)}`,
    );
  }
  const headers = new HeaderMap();
  if (isGrpcRequest(s.request.headers)) {
    // gRPC callers get HTTP 200 with a trailers-only grpc-status (Envoy's local reply for gRPC)
    headers.addLower("content-type", "application/grpc");
    let code = opts?.grpcStatus;
    if (code === undefined) {
      const timeout = (opts?.flags ?? 0) &
        (ResponseFlag.UpstreamRequestTimeout | ResponseFlag.DurationTimeout);
      code = timeout ? GrpcStatus.DeadlineExceeded : httpToGrpcStatus(status);
    }
    headers.addLower("grpc-status", String(code));
    if (body) headers.addLower("grpc-message", encodeGrpcMessage(body));
    if (opts?.headers) { for (const [k, v] of opts.headers) headers.add(k, v); }
    await s.encodeHeaders({ status: 200, headers }, true, 0);
    return;
  }
  const bytes = body ? new TextEncoder().encode(body) : EMPTY;
  if (bytes.length > 0) headers.addLower("content-type", "text/plain");
  if (opts?.headers) { for (const [k, v] of opts.headers) headers.add(k, v); }
  // The route's response header mutations apply to local replies too (Envoy does this for
  // direct responses and redirects; the router passes them in opts.headers otherwise).
  await s.encodeHeaders({ status, headers }, bytes.length === 0, bytes.length);
  if (bytes.length > 0 && !s.responseDone) await s.encodeData(bytes, true);
}
