/** What the router and its attempts (HTTP/1.1 UpstreamRequest, HTTP/2 H2UpstreamRequest) tell each other. */
import type { HttpFilterCallbacks } from "../../../../http/filter.ts";
import type { HeaderMap } from "../../../../http/headers.ts";
import type { FactoryContext } from "../../../../network/filter.ts";
import type { Host, UpstreamError } from "../../../../upstream/types.ts";

/** One attempt of a routed request, as the router drives it. */
export interface Attempt {
  /** The upstream host of this attempt. */
  readonly host: Host;
  /** True once the head and the buffered body went out: new body bytes may be sent directly. */
  readonly ready: boolean;
  /** True once the attempt ended (completed, failed or aborted). */
  readonly finished: boolean;
  /** The whole upstream response is in hand. */
  readonly upstreamComplete: boolean;
  /** True once the upstream accepted an upgrade (101). */
  readonly tunnel: boolean;
  /** True while the attempt holds a connection or stream (a downstream reset then counts as tx_reset). */
  readonly active: boolean;
  /** Monotonic time of the last upstream receive (0 before any): the response head's and end's time. */
  readonly rxMono: number;
  /** Sets the per-try timeout (armed when the request is complete). */
  setPerTryTimeout(ms: number): void;
  /**
   * Sends request body bytes: the answer (false when the attempt failed) once they may be reused, a promise of
   * it when they are held (flow control, a busy socket).
   */
  sendData(data: Uint8Array, endStream: boolean): boolean | Promise<boolean>;
  /** Sends the owner's request trailers, ending the request. */
  sendTrailers(): Promise<void>;
  /** The router gives up on this attempt: release everything. */
  abort(): void;
}

/** What an attempt reports to the router. */
export interface AttemptOwner {
  readonly cb: HttpFilterCallbacks;
  readonly ctx: FactoryContext;
  /** True when the request is a tunnel (upgrade): the write side half-closes at the end of the body. */
  readonly tunnelRequested: boolean;
  /** The buffered request body (replayed by every attempt), or null when not buffering. */
  readonly body: readonly Uint8Array[] | null;
  /** True once the whole request body was received. */
  readonly bodyEnd: boolean;
  /** The request trailers, once received. */
  readonly requestTrailers: HeaderMap | null;
  /** The request trailers encoded as an HTTP/1.1 chunked trailer block (with the last chunk), once received. */
  readonly trailersBlock: Uint8Array | null;
  /** A response head arrived; true lets the attempt forward it, false means the router took over (retry). */
  onAttemptHeaders(a: Attempt, status: number, headers: HeaderMap): boolean;
  /** Upstream bytes arrived at monotonic `now` (0: not taken; route idle timeout). */
  onUpstreamActivity(now: number): void;
  /** The attempt failed with `err` before its head was forwarded (the attempt already released everything). */
  onAttemptFailed(a: Attempt, err: UpstreamError): void;
  /** The attempt failed after the response started downstream; `flag` is the ResponseFlag (UC by default). */
  onAttemptResetAfterHeaders(a: Attempt, flag?: number, reason?: string): void;
}
