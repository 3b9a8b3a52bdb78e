/** The HTTP/2 codec (RFC 9113, HPACK RFC 7541): server and client connections over a byte transport. */
export { ErrorCode, Flag, FrameType, PREFACE, SettingId } from "./constants.ts";
export type { H2ConnectionEvents, H2ConnectionOptions } from "./core.ts";
export type { H2Transport } from "./wire.ts";
export { H2ServerConnection } from "./server.ts";
export { H2ClientConnection } from "./client.ts";
export { H2Stream, type H2StreamHandler, ResetReason } from "./stream.ts";
export { type H2Head, requestHead, responseHead } from "./head.ts";
export type { H2Options } from "./options.ts";
export {
  H2_COUNTERS,
  H2_GAUGES,
  type H2Counter,
  type H2Gauge,
  type H2Stats,
  h2StatsFrom,
  type H2StatValues,
  H2Value,
  newH2Stats,
} from "./stats.ts";
export { HpackDecoder, HpackEncoder, HpackResult } from "./hpack.ts";
