/**
 * envoy.filters.http.ext_authz, per stream: asks the external authorization service (gRPC Authorization/Check
 * or a plain HTTP service) about the request before it goes on, optionally with its buffered body. OK: the
 * service's header and query changes apply and the request continues; denied: its status, headers and body go
 * back to the client (flag UAEX); error or timeout: status_on_error (403) with UAEX, or the request continues
 * under failure_mode_allow. Stats `http.<prefix>.ext_authz.[<stat_prefix>.]*` and `cluster.<route
 * cluster>.ext_authz.[<stat_prefix>.]*` as in Envoy.
 */
import { Logger } from "../../../../common/log.ts";
import { ResponseFlag } from "../../../../common/response_flags.ts";
import {
  type HttpFilter,
  type HttpFilterCallbacks,
  HttpFilterStatus,
  type HttpResponse,
} from "../../../../http/filter.ts";
import { HeaderMap } from "../../../../http/headers.ts";
import type { Span } from "../../../../tracing/types.ts";
import { perRouteConfig } from "../../common/config.ts";
import { type AuthzCall, type AuthzResponse, CheckStatus, type HeaderMutation } from "./check.ts";
import type { BufferSettingsConfig, ExtAuthzPerRouteConfig } from "./config.ts";
import { type ClusterAuthzStats, EXT_AUTHZ_NAME, type ExtAuthzFactory } from "./factory.ts";
import {
  applyRequestMutation,
  applyResponseMutations,
  headerNameIsValid,
  headerValueIsValid,
  isRemovableHeader,
  queryParameterIsUrlEncoded,
  rewriteQuery,
} from "./mutations.ts";

const FAILURE_MODE_ALLOWED = "x-envoy-auth-failure-mode-allowed";
const log = new Logger("ext_authz");

/** One stream's ext_authz state. */
export class ExtAuthzFilter implements HttpFilter {
  /** Holding the request body until it is complete or max_request_bytes arrived. */
  #buffering = false;
  #maxBytes = 0;
  #allowPartial = false;
  /** Copies of the first max_request_bytes body bytes. */
  #parts: Uint8Array[] | null = null;
  #kept = 0;
  #seen = 0;
  #settings: ExtAuthzPerRouteConfig["check_settings"];
  #call: AuthzCall | null = null;
  #destroyed = false;
  /** Response header changes to apply in encodeHeaders (OK: to the client's response; denied: the local reply). */
  #responseMutations: HeaderMutation[] | null = null;
  #localReply = false;

  constructor(readonly f: ExtAuthzFactory, readonly cb: HttpFilterCallbacks) {}

  decodeHeaders(endStream: boolean): HttpFilterStatus | Promise<HttpFilterStatus> {
    const f = this.f, cb = this.cb;
    if (cb.route() === null) return HttpFilterStatus.Continue;
    const pfc = perRouteConfig(cb, f.name);
    const per = pfc === undefined ? undefined : pfc.config as ExtAuthzPerRouteConfig;
    if (per?.disabled) {
      if (log.enabled("debug")) log.debug(`${cb.streamInfo.logPrefix()}ext_authz is disabled for the route`);
      return HttpFilterStatus.Continue;
    }
    const cs = per?.check_settings;
    this.#settings = cs;
    if (f.enabled !== null && !f.enabled.hit()) {
      f.stats.disabled.inc();
      if (f.denyAtDisable) return this.#fail(f.statusOnError, "", null, "ext_authz_error");
      return HttpFilterStatus.Continue;
    }
    const buffer: BufferSettingsConfig | undefined = cs?.with_request_body ?? f.withBody;
    if (buffer !== undefined && !cs?.disable_request_body_buffering && !endStream && cb.upgradeType === "") {
      this.#buffering = true;
      this.#maxBytes = buffer.max_request_bytes;
      this.#allowPartial = buffer.allow_partial_message;
      if (!this.#allowPartial) cb.setDecoderBufferLimit?.(this.#maxBytes);
      if (log.enabled("debug")) {
        log.debug(`${cb.streamInfo.logPrefix()}ext_authz filter is buffering the request`);
      }
      return HttpFilterStatus.StopIterationAndBuffer;
    }
    return this.#check(null, false);
  }

  decodeData(data: Uint8Array, endStream: boolean): HttpFilterStatus | Promise<HttpFilterStatus> {
    if (!this.#buffering) return HttpFilterStatus.Continue;
    this.#seen += data.length;
    const room = this.#maxBytes - this.#kept;
    if (room > 0 && data.length > 0) {
      const take = data.length < room ? data.length : room;
      (this.#parts ??= []).push(data.slice(0, take));
      this.#kept += take;
    }
    if (!this.#allowPartial && this.#seen > this.#maxBytes) {
      // without allow_partial_message a body over the limit gets the connection manager's 413 (the decoder
      // buffer limit is max_request_bytes); a stream without that limit gets it from here
      if (this.cb.setDecoderBufferLimit !== undefined) return HttpFilterStatus.StopIterationAndBuffer;
      this.#buffering = false;
      return this.#tooLarge();
    }
    const full = this.#allowPartial && this.#seen >= this.#maxBytes;
    if (!endStream && !full) return HttpFilterStatus.StopIterationAndBuffer;
    return this.#checkBuffered();
  }

  decodeTrailers(_trailers: HeaderMap): HttpFilterStatus | Promise<HttpFilterStatus> {
    if (!this.#buffering) return HttpFilterStatus.Continue;
    return this.#checkBuffered();
  }

  async #tooLarge(): Promise<HttpFilterStatus> {
    await this.cb.sendLocalReply(413, "Payload Too Large", { details: "request_payload_too_large" });
    return HttpFilterStatus.StopIteration;
  }

  #checkBuffered(): Promise<HttpFilterStatus> {
    this.#buffering = false;
    const parts = this.#parts;
    this.#parts = null;
    let body: Uint8Array;
    if (parts === null) body = new Uint8Array(0);
    else if (parts.length === 1) body = parts[0];
    else {
      body = new Uint8Array(this.#kept);
      let off = 0;
      for (const p of parts) {
        body.set(p, off);
        off += p.length;
      }
    }
    return this.#check(body, this.#seen > this.#kept);
  }

  async #check(body: Uint8Array | null, partial: boolean): Promise<HttpFilterStatus> {
    const f = this.f, cb = this.cb;
    const cluster = cb.streamInfo.upstreamCluster;
    const input = f.checkInput(cb, body, partial, this.#settings?.context_extensions ?? null);
    if (log.enabled("debug")) {
      log.debug(`${cb.streamInfo.logPrefix()}ext_authz filter calling authorization server`);
    }
    const started = f.ctx.clock.monotonic();
    // tracing: the check is a child span of the request's (Envoy's async client spans)
    const parent = cb.activeSpan;
    const span = parent != null && parent.sampled ? parent.spawnChild(f.spanName, f.ctx.clock.now()) : null;
    let call: AuthzCall;
    if (f.http !== null) call = f.http.checkWith(input, cb.routeContext(), span);
    else {
      // gRPC: the span's context goes in the call's initial metadata
      let metadata: HeaderMap | null = null;
      if (span !== null) span.injectContext(metadata = new HeaderMap());
      call = f.client.check(input, metadata);
    }
    this.#call = call;
    const res = await call.result;
    this.#call = null;
    if (span !== null) this.#traceCheck(span, parent!, res);
    if (this.#destroyed) return HttpFilterStatus.StopIteration;
    if (res.dynamicMetadata !== null) this.#ingest(res, started);
    return await this.#complete(res, cluster);
  }

  /** Finishes the check's span and tags the request's span with the outcome (Envoy's ext_authz_status). */
  #traceCheck(span: Span, parent: Span, res: AuthzResponse): void {
    span.setTag("component", "proxy");
    span.setTag("upstream_cluster", this.f.serviceCluster);
    if (res.status === CheckStatus.Error) span.setTag("error", "true");
    span.finish(this.f.ctx.clock.now());
    parent.setTag(
      "ext_authz_status",
      res.status === CheckStatus.Ok
        ? "ext_authz_ok"
        : res.status === CheckStatus.Denied
        ? "ext_authz_unauthorized"
        : "ext_authz_error",
    );
  }

  /** The service's dynamic metadata into the `envoy.filters.http.ext_authz` namespace (plus ext_authz_duration). */
  #ingest(res: AuthzResponse, started: number): void {
    const f = this.f;
    if (!f.config.enable_dynamic_metadata_ingestion) {
      f.stats.ignored_dynamic_metadata.inc();
      return;
    }
    const fields = res.dynamicMetadata!;
    if (res.status === CheckStatus.Ok) {
      fields.ext_authz_duration = Math.floor(f.ctx.clock.monotonic() - started);
    }
    const info = this.cb.streamInfo;
    const all = info.dynamicMetadata ??= {};
    const cur = all[EXT_AUTHZ_NAME];
    if (cur === undefined) all[EXT_AUTHZ_NAME] = fields;
    else Object.assign(cur, fields);
  }

  /** Envoy's Filter::onComplete. */
  async #complete(res: AuthzResponse, cluster: string): Promise<HttpFilterStatus> {
    const f = this.f, cb = this.cb;
    const cs = cluster === "" ? null : f.clusterStats(cluster);
    const validate = f.config.validate_mutations;
    if (res.sawInvalidAppendAction && validate) return await this.#reject(cs);
    if (res.status === CheckStatus.Ok) {
      if (validate && !mutationsValid(res)) return await this.#reject(cs);
      const req = cb.request;
      const queryChanged = res.queryToSet.length > 0 || res.queryToRemove.length > 0;
      if (
        f.config.clear_route_cache &&
        (res.requestHeaders.length > 0 || res.headersToRemove.length > 0 || queryChanged)
      ) {
        if (log.enabled("debug")) log.debug(`${cb.streamInfo.logPrefix()}ext_authz is clearing route cache`);
        cb.clearRouteCache();
      }
      for (const m of res.requestHeaders) applyRequestMutation(req, m);
      for (const k of res.headersToRemove) if (isRemovableHeader(k)) req.headers.remove(k);
      if (res.responseHeaders.length > 0) this.#responseMutations = res.responseHeaders;
      if (queryChanged) req.path = rewriteQuery(req.path, res.queryToSet, res.queryToRemove);
      cs?.ok.inc();
      f.stats.ok.inc();
      return HttpFilterStatus.Continue;
    }
    if (res.status === CheckStatus.Denied) {
      if (log.enabled("debug")) {
        log.debug(`${cb.streamInfo.logPrefix()}ext_authz filter rejected the request with ${res.statusCode}`);
      }
      f.stats.denied.inc();
      if (cs !== null) {
        cs.denied.inc();
        if (f.config.charge_cluster_response_stats) {
          f.ctx.clusterManager.get(cluster)?.stats.recordResponseCode(res.statusCode);
        }
      }
      if (validate && !headersValid(res.responseHeaders)) return await this.#reject(cs);
      return await this.#fail(res.statusCode, res.body, res.responseHeaders, "ext_authz_denied");
    }
    cs?.error.inc();
    f.stats.error.inc();
    if (f.config.failure_mode_allow) {
      if (log.enabled("debug")) {
        log.debug(`${cb.streamInfo.logPrefix()}ext_authz filter allowed the request with error`);
      }
      f.stats.failure_mode_allowed.inc();
      cs?.failure_mode_allowed.inc();
      if (f.config.failure_mode_allow_header_add) cb.request.headers.addLower(FAILURE_MODE_ALLOWED, "true");
      return HttpFilterStatus.Continue;
    }
    // an error_response may carry its own status, headers and body; otherwise status_on_error
    const status = res.statusCode > 0 ? res.statusCode : f.statusOnError;
    return await this.#fail(status, res.body, res.responseHeaders, "ext_authz_error");
  }

  /** A local reply with flag UAEX (`headers` applied to it in encodeHeaders). */
  async #fail(
    status: number,
    body: string,
    headers: HeaderMutation[] | null,
    details: string,
  ): Promise<HttpFilterStatus> {
    const max = this.f.config.max_denied_response_body_bytes;
    if (max > 0 && body.length > 0) body = truncateUtf8(body, max);
    if (status < 200 || status > 599) status = 403;
    if (headers !== null && headers.length > 0) {
      this.#responseMutations = headers;
      this.#localReply = true;
    }
    this.cb.streamInfo.responseFlags |= ResponseFlag.UnauthorizedExternalService;
    await this.cb.sendLocalReply(status, body, { flags: ResponseFlag.UnauthorizedExternalService, details });
    return HttpFilterStatus.StopIteration;
  }

  /** An invalid response under validate_mutations: 500 (Envoy's rejectResponse). */
  #reject(cs: ClusterAuthzStats | null): Promise<HttpFilterStatus> {
    cs?.invalid.inc();
    this.f.stats.invalid.inc();
    return this.#fail(500, "", null, "ext_authz_invalid");
  }

  encodeHeaders(res: HttpResponse, _endStream: boolean): HttpFilterStatus {
    const m = this.#responseMutations;
    if (m !== null) applyResponseMutations(res.headers, m, this.#localReply);
    return HttpFilterStatus.Continue;
  }

  onDestroy(): void {
    this.#destroyed = true;
    const call = this.#call;
    if (call !== null) {
      this.#call = null;
      call.cancel();
    }
  }
}

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder();

/** `s` cut to at most `max` UTF-8 bytes, at a character boundary (max_denied_response_body_bytes). */
function truncateUtf8(s: string, max: number): string {
  if (s.length * 3 <= max) return s;
  const bytes = utf8Encoder.encode(s);
  if (bytes.length <= max) return s;
  let cut = max;
  while (cut > 0 && (bytes[cut] & 0xc0) === 0x80) cut--;
  return utf8Decoder.decode(bytes.subarray(0, cut));
}

function headersValid(list: readonly HeaderMutation[]): boolean {
  for (const m of list) if (!headerNameIsValid(m.key) || !headerValueIsValid(m.value)) return false;
  return true;
}

/** validate_mutations on an OK decision: headers and query parameters to set must be well formed. */
function mutationsValid(res: AuthzResponse): boolean {
  if (!headersValid(res.requestHeaders) || !headersValid(res.responseHeaders)) return false;
  for (const [k, v] of res.queryToSet) {
    if (!queryParameterIsUrlEncoded(k) || !queryParameterIsUrlEncoded(v)) return false;
  }
  return true;
}
