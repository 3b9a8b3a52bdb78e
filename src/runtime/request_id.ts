/**
 * The integer Envoy's UUID request ID extension derives from an x-request-id (`toInteger`): its first 8
 * characters read as hexadecimal. Every hop that sees the same request id gets the same number, so sampling
 * decisions made from it (access log runtime_filter without independent randomness) agree across hops.
 */

/** The first 8 characters of `id` as a hexadecimal number; undefined when shorter or not hexadecimal. */
export function requestIdToInteger(id: string | undefined): number | undefined {
  if (id === undefined || id.length < 8) return undefined;
  let v = 0;
  for (let i = 0; i < 8; i++) {
    const c = id.charCodeAt(i);
    let d: number;
    if (c >= 48 && c <= 57) d = c - 48;
    else if (c >= 97 && c <= 102) d = c - 87;
    else if (c >= 65 && c <= 70) d = c - 55;
    else return undefined;
    v = v * 16 + d;
  }
  return v;
}
