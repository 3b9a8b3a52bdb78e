/** HTTP/2 wire constants (RFC 9113): frame types, flags, error codes, settings identifiers and defaults. */

/** The client connection preface ("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"). */
export const PREFACE: Uint8Array = new TextEncoder().encode("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

/** Frame header length in bytes. */
export const FRAME_HEADER = 9;

/** Frame type codes. */
export const FrameType = {
  DATA: 0,
  HEADERS: 1,
  PRIORITY: 2,
  RST_STREAM: 3,
  SETTINGS: 4,
  PUSH_PROMISE: 5,
  PING: 6,
  GOAWAY: 7,
  WINDOW_UPDATE: 8,
  CONTINUATION: 9,
} as const;

/** Frame flag bits. */
export const Flag = {
  END_STREAM: 0x1,
  ACK: 0x1,
  END_HEADERS: 0x4,
  PADDED: 0x8,
  PRIORITY: 0x20,
} as const;

/** Error codes carried by RST_STREAM and GOAWAY. */
export const ErrorCode = {
  NO_ERROR: 0x0,
  PROTOCOL_ERROR: 0x1,
  INTERNAL_ERROR: 0x2,
  FLOW_CONTROL_ERROR: 0x3,
  SETTINGS_TIMEOUT: 0x4,
  STREAM_CLOSED: 0x5,
  FRAME_SIZE_ERROR: 0x6,
  REFUSED_STREAM: 0x7,
  CANCEL: 0x8,
  COMPRESSION_ERROR: 0x9,
  CONNECT_ERROR: 0xa,
  ENHANCE_YOUR_CALM: 0xb,
  INADEQUATE_SECURITY: 0xc,
  HTTP_1_1_REQUIRED: 0xd,
} as const;

/** SETTINGS parameter identifiers. */
export const SettingId = {
  HEADER_TABLE_SIZE: 0x1,
  ENABLE_PUSH: 0x2,
  MAX_CONCURRENT_STREAMS: 0x3,
  INITIAL_WINDOW_SIZE: 0x4,
  MAX_FRAME_SIZE: 0x5,
  MAX_HEADER_LIST_SIZE: 0x6,
  ENABLE_CONNECT_PROTOCOL: 0x8,
} as const;

/** Largest flow-control window (2^31-1). */
export const MAX_WINDOW = 0x7fffffff;
/** Window every stream and the connection start with before SETTINGS (RFC 9113 §6.9.2). */
export const DEFAULT_WINDOW = 65535;
/** Smallest and largest legal SETTINGS_MAX_FRAME_SIZE. */
export const MIN_MAX_FRAME_SIZE = 16384;
/** Largest legal SETTINGS_MAX_FRAME_SIZE (2^24-1). */
export const MAX_MAX_FRAME_SIZE = 16777215;
/** Largest stream identifier. */
export const MAX_STREAM_ID = 0x7fffffff;
