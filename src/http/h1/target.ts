/** Request-target classification for the request parser (RFC 9112 3.2, strict like Envoy). */
import { bytesEqualLower, lowerBytes } from "./chars.ts";
import { H1ParseError } from "./types.ts";

function bad(details: string, message: string): H1ParseError {
  return new H1ParseError(400, details, message);
}

/** Result of the last `classifyTarget` call (module scratch, offsets into the buffer). */
export const target = { form: 0, authStart: 0, authEnd: 0, pathStart: 0, https: false };
/** Target form: origin. */
export const FORM_ORIGIN = 0;
/** Target form: absolute. */
export const FORM_ABSOLUTE = 1;
/** Target form: authority. */
export const FORM_AUTHORITY = 2;
/** Target form: asterisk. */
export const FORM_ASTERISK = 3;

/**
 * Classifies the request-target in [ts, te) (RFC 9112 3.2): origin-form, absolute-form (http/https only,
 * no userinfo), authority-form (CONNECT only) or asterisk-form (OPTIONS only); throws 400 otherwise.
 */
export function classifyTarget(
  buf: Uint8Array,
  ts: number,
  te: number,
  isConnect: boolean,
  isOptions: boolean,
): void {
  const first = buf[ts];
  if (isConnect) {
    // authority-form only: host:port, no path, no userinfo
    for (let i = ts; i < te; i++) {
      const b = buf[i];
      if (b === 47 || b === 63 || b === 35 || b === 64) {
        throw bad("http1.invalid_url", "Invalid CONNECT target");
      }
    }
    target.form = FORM_AUTHORITY;
    target.authStart = ts;
    target.authEnd = te;
    return;
  }
  if (first === 47) {
    target.form = FORM_ORIGIN;
    target.pathStart = ts;
    return;
  }
  if (first === 42 && te - ts === 1) {
    if (!isOptions) throw bad("http1.invalid_url", "Asterisk-form target is only valid for OPTIONS");
    target.form = FORM_ASTERISK;
    return;
  }
  // absolute-form: http:// or https://
  let i = ts;
  while (i < te && ((buf[i] | 0x20) >= 97 && (buf[i] | 0x20) <= 122)) i++;
  const schemeLen = i - ts;
  const isHttp = schemeLen === 4 && bytesEqualLower(buf, ts, i, B_HTTP);
  const isHttps = schemeLen === 5 && bytesEqualLower(buf, ts, i, B_HTTPS);
  if (!isHttp && !isHttps) {
    throw bad(
      schemeLen > 0 && buf[i] === 58 ? "http1.invalid_scheme" : "http1.invalid_url",
      "Invalid request target",
    );
  }
  if (i + 3 > te || buf[i] !== 58 || buf[i + 1] !== 47 || buf[i + 2] !== 47) {
    throw bad("http1.invalid_url", "Invalid absolute-form target");
  }
  const as = i + 3;
  let j = as;
  while (j < te) {
    const b = buf[j];
    if (b === 47 || b === 63 || b === 35) break;
    if (b === 64) throw bad("http1.invalid_url", "Userinfo in request target");
    j++;
  }
  if (j === as) throw bad("http1.invalid_url", "Empty authority in request target");
  target.form = FORM_ABSOLUTE;
  target.authStart = as;
  target.authEnd = j;
  target.pathStart = j;
  target.https = isHttps;
}
const B_HTTP = lowerBytes("http");
const B_HTTPS = lowerBytes("https");
