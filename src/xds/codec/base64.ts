/** Base64 for proto3 JSON `bytes` fields (standard alphabet, padded; decoding also takes the URL-safe one). */

/** Encodes bytes as padded standard base64. */
export function toBase64(bytes: Uint8Array): string {
  let bin = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(bin);
}

/** Decodes standard or URL-safe base64, padded or not; throws on other text. */
export function fromBase64(text: string): Uint8Array {
  let t = text.replace(/-/g, "+").replace(/_/g, "/");
  while (t.length % 4) t += "=";
  const bin = atob(t);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}
