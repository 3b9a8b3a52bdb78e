/**
 * What is known about a downstream TLS session, for the `%DOWNSTREAM_TLS_*%`, `%DOWNSTREAM_LOCAL_*%` and
 * `%DOWNSTREAM_PEER_*%` access log operators. Filled once per connection by the TLS accept path; every
 * stream of the connection shares the object. Empty strings (and null certificates) print as "-".
 */

/** Facts about one certificate, in Envoy's access log spelling (computed once per certificate). */
export interface CertificateFacts {
  /** URI SANs, comma-separated. */
  readonly uriSans: string;
  /** DNS SANs, comma-separated. */
  readonly dnsSans: string;
  /** IP SANs, comma-separated. */
  readonly ipSans: string;
  /** Subject in RFC 2253 order ("CN=a,O=b"). */
  readonly subject: string;
  /** Issuer in RFC 2253 order. */
  readonly issuer: string;
  /** Serial number, lower-case hex. */
  readonly serial: string;
  /** SHA-256 fingerprint, lower-case hex without separators. */
  readonly fingerprint256: string;
  /** SHA-1 fingerprint, lower-case hex without separators. */
  readonly fingerprint1: string;
  /** The leaf certificate as URL-encoded PEM. */
  readonly urlEncodedPem: string;
  /** notBefore, ms since epoch. */
  readonly validFrom: number;
  /** notAfter, ms since epoch. */
  readonly validTo: number;
  /** URI SANs one by one (XFCC `By=` and `URI=` entries). */
  readonly uriSanList?: readonly string[];
  /** DNS SANs one by one (XFCC `DNS=` entries). */
  readonly dnsSanList?: readonly string[];
}

/** One downstream TLS session (per connection). */
export interface DownstreamTlsInfo {
  /** SNI sent by the client ("" when none or not observable). */
  readonly sni: string;
  /** Negotiated ALPN protocol ("" when none). */
  readonly alpn: string;
  /** "TLSv1.3" / "TLSv1.2" ("" when not observable). */
  readonly version: string;
  /** Negotiated cipher suite, OpenSSL name ("" when not observable). */
  readonly cipher: string;
  /** Session id, lower-case hex ("" when none). */
  readonly sessionId: string;
  /** The certificate this side presented (null when not known). */
  readonly local: CertificateFacts | null;
  /** The client's certificate (null without mTLS). */
  readonly peer: CertificateFacts | null;
  /** The client's chain as URL-encoded PEM, leaf first (XFCC `Chain=`); absent without a client certificate. */
  readonly peerChain?: string;
}
