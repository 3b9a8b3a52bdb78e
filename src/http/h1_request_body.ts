/**
 * Moves a downstream HTTP/1.1 request's bytes after its head into its ActiveStream: the body (content-length
 * or chunked, decoded without copying) with backpressure, and the raw bytes of an upgraded (101) stream.
 */
import { ResponseFlag } from "../common/response_flags.ts";
import type { ActiveStream } from "./active_stream.ts";
import { ChunkedDecoder, H1ParseError, type RequestHead } from "./h1_glue.ts";
import { BODY_BUF, type H1ReadBuffer } from "./h1_read_buffer.ts";
import type { HcmOptions, HcmStats } from "./hcm_config.ts";

/**
 * Streams the request body (content-length or chunked) from `rb` into the stream with backpressure. Stops
 * early when the response completes first (the connection then closes, as it does on a truncated body); a
 * malformed chunked body is a 400 (or a reset once the response started), EOF a downstream reset.
 */
export async function pumpRequestBody(
  rb: H1ReadBuffer,
  stream: ActiveStream,
  head: RequestHead,
  o: HcmOptions,
  stats: HcmStats,
): Promise<void> {
  if (!head.chunked) {
    let remaining = head.contentLength;
    while (remaining > 0 && !stream.responseDone) {
      if (rb.end === rb.start) {
        // grow to a body-sized buffer for large bodies
        if (rb.buf.length < BODY_BUF && remaining > rb.buf.length) {
          rb.buf = new Uint8Array(BODY_BUF);
        }
        rb.start = rb.end = 0;
        if (!(await rb.fill(BODY_BUF))) {
          stream.downstreamReset();
          return;
        }
      }
      const take = Math.min(remaining, rb.end - rb.start);
      const chunk = rb.buf.subarray(rb.start, rb.start + take);
      rb.start += take;
      remaining -= take;
      stream.touch();
      await stream.decodeData(chunk, remaining === 0);
    }
    if (remaining > 0) stream.closeConnection = true;
    return;
  }
  const dec = new ChunkedDecoder({
    maxHeadersBytes: o.maxHeadersBytes,
    maxHeadersCount: o.maxHeadersCount,
  });
  const maxGrow = Math.max(BODY_BUF, o.maxHeadersBytes + 1024);
  for (;;) {
    if (stream.responseDone) {
      stream.closeConnection = true;
      return;
    }
    let r;
    try {
      r = dec.next(rb.buf, rb.start, rb.end);
    } catch (err) {
      if (err instanceof H1ParseError) {
        stats.downstream_cx_protocol_error.inc();
        stream.closeConnection = true;
        if (!stream.responseStarted) {
          await stream.sendLocalReply(400, "Bad Request", {
            details: err.details,
            flags: ResponseFlag.DownstreamProtocolError,
          });
        } else stream.resetStream();
        return;
      }
      throw err;
    }
    rb.start = r.consumed;
    if (r.kind === "data") {
      stream.touch();
      await stream.decodeData(rb.buf.subarray(r.start, r.end), false);
    } else if (r.kind === "done") {
      if (r.trailers && r.trailers.size > 0) await stream.decodeTrailers(r.trailers);
      else await stream.decodeData(new Uint8Array(0), true);
      return;
    } else {
      if (rb.start === rb.end) {
        if (rb.buf.length < BODY_BUF) rb.buf = new Uint8Array(BODY_BUF);
        rb.start = rb.end = 0;
      }
      // the trailer section may be as large as the header limit: let the buffer grow that far
      const buffered = rb.end - rb.start;
      if (!(await rb.fill(maxGrow))) {
        stream.downstreamReset();
        return;
      }
      if (rb.end - rb.start === buffered) {
        // the buffer is full and may not grow: the decoder never gets its line or trailer block
        stats.downstream_cx_protocol_error.inc();
        stream.closeConnection = true;
        if (!stream.responseStarted) {
          await stream.sendLocalReply(431, "", {
            details: "http1.headers_too_large",
            flags: ResponseFlag.DownstreamProtocolError,
          });
        } else stream.resetStream();
        return;
      }
    }
  }
}

/**
 * After a 101: copies raw downstream bytes into the stream until both directions are done or the downstream
 * reaches EOF (which ends the request side), then waits for the stream to finish. The connection ends after.
 */
export async function tunnelRequestBytes(rb: H1ReadBuffer, stream: ActiveStream): Promise<void> {
  while (!stream.responseDone || !stream.requestDone) {
    if (rb.end > rb.start) {
      const chunk = rb.buf.subarray(rb.start, rb.end);
      rb.start = rb.end = 0;
      await stream.decodeData(chunk, false);
      continue;
    }
    if (stream.requestDone) break;
    if (rb.buf.length < BODY_BUF) rb.buf = new Uint8Array(BODY_BUF);
    rb.start = rb.end = 0;
    if (!(await rb.fill(BODY_BUF))) {
      if (!stream.responseDone) await stream.decodeData(new Uint8Array(0), true);
      break;
    }
  }
  await stream.done;
}
