/**
 * The tls_inspector listener filter's parser: reads SNI and ALPN from the first bytes of a connection
 * (a TLS ClientHello, possibly split over several records) without terminating TLS.
 */

/** What the first bytes of a connection say. */
export type HelloResult =
  | { kind: "more" }
  | { kind: "raw" }
  | {
    kind: "tls";
    sni: string;
    alpn: string[];
    /** TLS 1.3 is offered (supported_versions). */
    tls13: boolean;
    /** The legacy session id, lower-case hex ("" when empty): a TLS 1.2 resumption attempt when set. */
    sessionId: string;
  };

/** Largest ClientHello accepted (Envoy's tls_inspector reads at most 64 KiB). */
export const MAX_HELLO_BYTES = 64 * 1024;

const MORE: HelloResult = { kind: "more" };
const RAW: HelloResult = { kind: "raw" };
const decoder = new TextDecoder();

/**
 * Inspects `buf` (bytes read so far): "more" until a whole ClientHello is there, "raw" when the bytes are not
 * a TLS handshake (or are malformed), else the SNI ("" when absent) and the offered ALPN protocols.
 */
export function parseClientHello(buf: Uint8Array): HelloResult {
  if (buf.length === 0) return MORE;
  if (buf[0] !== 0x16) return RAW;
  if (buf.length >= 2 && buf[1] !== 0x03) return RAW;
  // gather the handshake bytes from consecutive handshake records
  const hs: Uint8Array[] = [];
  let hsLen = 0;
  let off = 0;
  let need = -1;
  while (need < 0 || hsLen < need) {
    if (off + 5 > buf.length) return buf.length >= MAX_HELLO_BYTES ? RAW : MORE;
    if (buf[off] !== 0x16) return RAW;
    const len = (buf[off + 3] << 8) | buf[off + 4];
    if (len === 0 || len > 16384 + 2048) return RAW;
    if (off + 5 + len > buf.length) return buf.length >= MAX_HELLO_BYTES ? RAW : MORE;
    hs.push(buf.subarray(off + 5, off + 5 + len));
    hsLen += len;
    off += 5 + len;
    if (need < 0) {
      const first = hs[0];
      if (first.length < 4 || first[0] !== 0x01) return RAW;
      need = 4 + ((first[1] << 16) | (first[2] << 8) | first[3]);
      if (need > MAX_HELLO_BYTES) return RAW;
    }
  }
  const m = hs.length === 1 ? hs[0] : concat(hs, hsLen);
  return parseHello(m.subarray(4, need)) ?? RAW;
}

function concat(parts: Uint8Array[], n: number): Uint8Array {
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Parses the ClientHello body; undefined when malformed. */
function parseHello(b: Uint8Array): HelloResult | undefined {
  let p = 2 + 32; // client_version, random
  if (p + 1 > b.length) return undefined;
  const sidLen = b[p];
  if (p + 1 + sidLen > b.length) return undefined;
  let sessionId = "";
  for (let i = p + 1; i < p + 1 + sidLen; i++) sessionId += (b[i] < 16 ? "0" : "") + b[i].toString(16);
  p += 1 + sidLen; // session_id
  if (p + 2 > b.length) return undefined;
  p += 2 + ((b[p] << 8) | b[p + 1]); // cipher_suites
  if (p + 1 > b.length) return undefined;
  p += 1 + b[p]; // compression_methods
  let sni = "";
  const alpn: string[] = [];
  let tls13 = false;
  if (p === b.length) return { kind: "tls", sni, alpn, tls13, sessionId }; // no extensions
  if (p + 2 > b.length) return undefined;
  const end = p + 2 + ((b[p] << 8) | b[p + 1]);
  if (end > b.length) return undefined;
  p += 2;
  while (p + 4 <= end) {
    const type = (b[p] << 8) | b[p + 1];
    const len = (b[p + 2] << 8) | b[p + 3];
    const ext = p + 4;
    p = ext + len;
    if (p > end) return undefined;
    if (type === 0 && len >= 2) {
      // server_name: list of (type, name); the host_name entry
      let q = ext + 2;
      while (q + 3 <= p) {
        const nameType = b[q];
        const nameLen = (b[q + 1] << 8) | b[q + 2];
        if (q + 3 + nameLen > p) return undefined;
        if (nameType === 0) {
          sni = decoder.decode(b.subarray(q + 3, q + 3 + nameLen)).toLowerCase();
          break;
        }
        q += 3 + nameLen;
      }
    } else if (type === 16 && len >= 2) {
      let q = ext + 2;
      while (q < p) {
        const l = b[q];
        if (q + 1 + l > p) return undefined;
        alpn.push(decoder.decode(b.subarray(q + 1, q + 1 + l)));
        q += 1 + l;
      }
    } else if (type === 43 && len >= 1) {
      // supported_versions: a length byte, then 2-byte versions
      for (let q = ext + 1; q + 1 < p && q < ext + 1 + b[ext]; q += 2) {
        if (b[q] === 3 && b[q + 1] === 4) tls13 = true;
      }
    }
  }
  return { kind: "tls", sni, alpn, tls13, sessionId };
}
