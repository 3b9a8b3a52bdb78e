/**
 * The trace decision carried in x-request-id, as Envoy's UUID request-id extension packs it: the 15th
 * character (index 14, the UUID version nibble) is '9' sampled, 'a' forced by the service (x-envoy-force-trace),
 * 'b' forced by the client (x-client-trace-id), '4' not traced. `mutateTraceReason` is Envoy's
 * ConnectionManagerUtility::mutateTracingRequestHeader.
 */
import type { HeaderMap } from "../http/headers.ts";
import { TraceReason } from "./types.ts";

const POS = 14;
const UUID_LENGTH = 36;
const C_SAMPLED = 57; // '9'
const C_FORCED = 97; // 'a'
const C_CLIENT = 98; // 'b'

/** The sampling percentages of an HCM (or the route's overrides) as parts per 10 000. */
export interface SamplingRates {
  /** client_sampling (x-client-trace-id), per 10 000. */
  readonly client: number;
  /** random_sampling, per 10 000. */
  readonly random: number;
  /** overall_sampling, per 10 000. */
  readonly overall: number;
}

/** The trace reason x-request-id carries (NotTraceable when absent or not a UUID). */
export function traceReasonOf(id: string | undefined): TraceReason {
  if (id === undefined || id.length !== UUID_LENGTH) return TraceReason.NotTraceable;
  const c = id.charCodeAt(POS);
  if (c === C_SAMPLED) return TraceReason.Sampling;
  if (c === C_FORCED) return TraceReason.ServiceForced;
  if (c === C_CLIENT) return TraceReason.ClientForced;
  return TraceReason.NotTraceable;
}

/** `id` with the trace reason packed in (unchanged when it is not a UUID). */
export function withTraceReason(id: string, reason: TraceReason): string {
  if (id.length !== UUID_LENGTH) return id;
  const c = reason === TraceReason.Sampling
    ? "9"
    : reason === TraceReason.ServiceForced
    ? "a"
    : reason === TraceReason.ClientForced
    ? "b"
    : "4";
  return id.slice(0, POS) + c + id.slice(POS + 1);
}

/** The integer Envoy samples on: the first 8 hex digits of x-request-id; -1 when they are not hex. */
export function requestIdInteger(id: string): number {
  if (id.length < 8) return -1;
  let v = 0;
  for (let i = 0; i < 8; i++) {
    const c = id.charCodeAt(i);
    const d = c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c >= 65 && c <= 70 ? c - 55 : -1;
    if (d < 0) return -1;
    v = v * 16 + d;
  }
  return v;
}

/**
 * Decides and records the trace reason in x-request-id (runs once per request, only when tracing is
 * configured): a request not traced yet becomes client-forced (x-client-trace-id, client_sampling),
 * service-forced (x-envoy-force-trace) or sampled (random_sampling on the request id); overall_sampling then
 * caps all of them. Returns the final reason; `random` draws the client-sampling value in [0, 1).
 */
export function mutateTraceReason(
  headers: HeaderMap,
  rates: SamplingRates,
  random: () => number,
): TraceReason {
  const id = headers.get("x-request-id");
  // a request id that is not a UUID carries no decision (Envoy's setTraceReason leaves it alone)
  if (id === undefined || id.length !== UUID_LENGTH) return TraceReason.NotTraceable;
  const n = requestIdInteger(id);
  if (n < 0) return traceReasonOf(id);
  const result = n % 10000;
  const status = traceReasonOf(id);
  let reason: TraceReason = status;
  if (status === TraceReason.NotTraceable) {
    if (headers.has("x-client-trace-id") && Math.floor(random() * 10000) < rates.client) {
      reason = TraceReason.ClientForced;
    } else if (headers.has("x-envoy-force-trace")) reason = TraceReason.ServiceForced;
    else if (result < rates.random) reason = TraceReason.Sampling;
  }
  if (reason !== TraceReason.NotTraceable && !(result < rates.overall)) reason = TraceReason.NotTraceable;
  if (reason !== status) headers.set("x-request-id", withTraceReason(id, reason));
  return reason;
}
