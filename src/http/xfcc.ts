/**
 * x-forwarded-client-cert, as Envoy's HTTP connection manager sets it (`forward_client_cert_details`,
 * `set_current_client_cert_details`): removed unless the connection is mutual TLS (or ALWAYS_FORWARD_ONLY),
 * forwarded, appended to or replaced with this hop's element `By=<local URI SAN>;Hash=<peer SHA-256>` followed by
 * the configured details in Envoy's order (Cert, Chain, Subject, URI, DNS). The element depends only on the
 * connection, so it is built once per connection and reused by its requests.
 */
import type { DownstreamTlsInfo } from "../common/tls_info.ts";
import type { HeaderMap } from "./headers.ts";

/** HttpConnectionManager.ForwardClientCertDetails. */
export type ForwardClientCert =
  | "SANITIZE"
  | "FORWARD_ONLY"
  | "APPEND_FORWARD"
  | "SANITIZE_SET"
  | "ALWAYS_FORWARD_ONLY";

/** One detail of set_current_client_cert_details, in the order Envoy emits them. */
export type ClientCertDetail = "Cert" | "Chain" | "Subject" | "URI" | "DNS";

const XFCC = "x-forwarded-client-cert";

/** Builds and caches this hop's XFCC element per connection; one per HCM config snapshot. */
export class XfccBuilder {
  readonly #details: readonly ClientCertDetail[];
  readonly #cache = new WeakMap<DownstreamTlsInfo, string>();

  constructor(details: readonly ClientCertDetail[]) {
    this.#details = details;
  }

  /** The element for a connection whose peer presented a certificate. */
  element(tls: DownstreamTlsInfo): string {
    let v = this.#cache.get(tls);
    if (v !== undefined) return v;
    v = buildElement(tls, this.#details);
    this.#cache.set(tls, v);
    return v;
  }
}

/** This hop's element (see the file comment); `tls.peer` must be set. */
export function buildElement(tls: DownstreamTlsInfo, details: readonly ClientCertDetail[]): string {
  const peer = tls.peer!;
  const parts: string[] = [];
  for (const uri of tls.local?.uriSanList ?? []) parts.push(`By=${uri}`);
  if (peer.fingerprint256 !== "") parts.push(`Hash=${peer.fingerprint256}`);
  for (const d of details) {
    switch (d) {
      case "Cert":
        if (peer.urlEncodedPem !== "") parts.push(`Cert="${peer.urlEncodedPem}"`);
        break;
      case "Chain":
        if (tls.peerChain) parts.push(`Chain="${tls.peerChain}"`);
        break;
      case "Subject":
        // the key is there even when the subject is empty
        parts.push(`Subject="${peer.subject}"`);
        break;
      case "URI": {
        const uris = peer.uriSanList ?? [];
        if (uris.length === 0) parts.push("URI=");
        for (const u of uris) parts.push(`URI=${u}`);
        break;
      }
      case "DNS":
        for (const n of peer.dnsSanList ?? []) parts.push(`DNS=${n}`);
        break;
    }
  }
  return parts.join(";");
}

/**
 * Applies `mode` to a request's headers (runs once per request, after the other request header handling):
 * `builder` is set for APPEND_FORWARD and SANITIZE_SET.
 */
export function mutateXfcc(
  headers: HeaderMap,
  mode: ForwardClientCert,
  builder: XfccBuilder | undefined,
  tls: DownstreamTlsInfo | undefined,
): void {
  if (mode === "ALWAYS_FORWARD_ONLY") return;
  if (mode === "SANITIZE" || tls === undefined || tls.peer === null) {
    headers.remove(XFCC);
    return;
  }
  if (mode === "FORWARD_ONLY" || builder === undefined) return;
  const element = builder.element(tls);
  if (mode === "SANITIZE_SET") {
    headers.set(XFCC, element);
    return;
  }
  // APPEND_FORWARD: "," between elements (several header lines count as one, as Envoy coalesces them)
  const prev = headers.getAll(XFCC).filter((v) => v !== "").join(",");
  headers.set(XFCC, prev === "" ? element : `${prev},${element}`);
}
