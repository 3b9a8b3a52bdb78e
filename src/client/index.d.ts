/**
 * Types of @nuncio/client (the implementation is index.js and its modules, plain ESM with JSDoc types).
 * Kept in step with the JSDoc by src/client/client_test.ts, which type-checks both.
 */

/** Where the egress listener is when neither an option nor NUNCIO_EGRESS says: "127.0.0.1:9001". */
export declare const DEFAULT_EGRESS: string;

/** The headers propagated from an incoming request to outgoing calls (lower case). */
export declare const PROPAGATED_HEADERS: readonly string[];

/** Anything a server hands out as request headers. */
export type HeaderSource =
  | Headers
  | Record<string, string | string[] | undefined>
  | Iterable<[string, string]>;

/** A Request, anything with `.headers` (a Node IncomingMessage), or the headers themselves. */
export type IncomingSource = Request | { headers: HeaderSource } | HeaderSource;

/** Options of `withIncoming` and `nuncioContext`. */
export interface WithIncomingOptions {
  /** Add a new x-request-id when the incoming request has none (default true). */
  generateRequestId?: boolean;
}

/** The policy headers of a call; `null` sends nothing, so the route's own setting applies. */
export interface CallPolicy {
  /** x-envoy-upstream-rq-timeout-ms (default 15000). */
  timeoutMs?: number | null;
  /** x-envoy-upstream-rq-per-try-timeout-ms (default: not sent). */
  perTryTimeoutMs?: number | null;
  /** x-envoy-max-retries (default 2 for GET/HEAD/OPTIONS/PUT/DELETE/TRACE, 0 for others). */
  retries?: number | null;
  /** x-envoy-retry-on, sent when retries > 0 (default "5xx,connect-failure,refused-stream"). */
  retryOn?: string | null;
}

/** Options of one call. */
export interface CallOptions extends CallPolicy {
  /** Default GET (POST with `json`). */
  method?: string;
  headers?: HeadersInit;
  body?: string | Uint8Array | null;
  /** A JSON body (content-type application/json unless given). */
  json?: unknown;
  signal?: AbortSignal;
}

/** Options of a client. */
export interface ClientOptions {
  /** host:port of the egress listener (default NUNCIO_EGRESS, then 127.0.0.1:9001). */
  egress?: string;
  /** The policy every call starts from. */
  defaults?: CallPolicy;
  /** Reuse connections to the egress listener (default true). */
  keepAlive?: boolean;
}

/** Parses `host:port`, `[v6]:port` or a bare port; throws on anything else. */
export declare function parseEgress(
  text: string,
): { host: string; port: number };

/** The option, else NUNCIO_EGRESS, else 127.0.0.1:9001, parsed. */
export declare function egressAddress(
  option?: string,
): { host: string; port: number };

/** A client bound to one egress listener, with its own connection pool. */
export declare class NuncioClient {
  constructor(options?: ClientOptions);
  /** The egress listener this client sends to. */
  get egress(): { host: string; port: number };
  /** Calls `path` of `service` through the egress listener (`Host: <service>`); resolves at the response headers. */
  call(service: string, path: string, options?: CallOptions): Promise<Response>;
  /** Closes the pooled connections; later calls open new ones. */
  close(): void;
}

/** `call()` on a shared client created on first use. */
export declare function call(
  service: string,
  path: string,
  options?: CallOptions,
): Promise<Response>;

/** Closes the shared client's idle connections. */
export declare function closeSharedClient(): void;

/** Runs `fn` with the tracing headers of `incoming` as the current context for `call()`. */
export declare function withIncoming<T>(
  incoming: IncomingSource,
  fn: () => T,
  options?: WithIncomingOptions,
): T;

/** Hono middleware: the rest of the chain runs inside `withIncoming(c.req.raw)`. */
export declare function nuncioContext(
  options?: WithIncomingOptions,
): (c: { req: { raw: Request } }, next: () => Promise<void>) => Promise<void>;

/** The propagated headers of the request being handled ([] outside `withIncoming`). */
export declare function currentHeaders(): ReadonlyArray<
  readonly [string, string]
>;

/** The x-request-id of the request being handled, for logs. */
export declare function requestId(): string | undefined;

/** Why a call failed, from the proxy's headers. */
export type FailureReason =
  | "overloaded"
  | "rate_limited"
  | "timeout"
  | "unavailable"
  | "bad_gateway"
  | "upstream"
  | "client";

/** What the proxy's response headers say. */
export interface ProxyOutcome {
  status: number;
  /** status < 400 */
  ok: boolean;
  /** x-envoy-upstream-service-time was present: the upstream answered, not the proxy. */
  fromUpstream: boolean;
  /** x-envoy-overloaded: a circuit breaker refused. */
  overloaded: boolean;
  /** x-envoy-ratelimited: a rate limit refused. */
  rateLimited: boolean;
  upstreamServiceTimeMs: number | undefined;
  /** x-envoy-attempt-count, when the route includes it. */
  attempts: number | undefined;
  reason: FailureReason | undefined;
}

/** Reads the proxy's headers of `response` (never its body). */
export declare function proxyOutcome(
  response: { status: number; headers: Headers },
): ProxyOutcome;

/** A failed call. */
export declare class ProxyError extends Error {
  constructor(service: string, outcome: ProxyOutcome);
  service: string;
  outcome: ProxyOutcome;
  status: number;
}

/** Returns `response` when status < 400; otherwise cancels its body and throws a ProxyError. */
export declare function expectOk(
  service: string,
  response: Response,
): Promise<Response>;
