/** The HTTP/1.1 codec: byte-level head parsers, the chunked decoder and the encoders. */
export {
  H1EncodeError,
  type H1Limits,
  H1ParseError,
  type HeadScanState,
  type RequestHead,
  type ResponseHead,
} from "./types.ts";
export { H2_PREFACE_LENGTH, h2PrefaceState, isH2Preface, parseRequestHead } from "./request.ts";
export { parseResponseHead, type ResponseBodyKind, responseBodyKind, responseHasNoBody } from "./response.ts";
export { ChunkedDecoder, type ChunkKind, ChunkResult } from "./chunked.ts";
export {
  CHUNK_END,
  chunkHeader,
  concatBytes,
  encodeChunk,
  encodeHeadString,
  encodeLastChunk,
  encodeRequestHead,
  encodeResponse,
  encodeResponseHead,
  frameChunk,
  LAST_CHUNK,
  type RequestHeadOptions,
  requestHeadString,
  responseHeadString,
} from "./encode.ts";
export { reasonPhrase } from "./status_text.ts";
export {
  BodyEvent,
  BodyFraming,
  CLIENT_FIRST_BUF_SIZE,
  CLIENT_READ_BUF_SIZE,
  H1ClientCodec,
  H1ClosedError,
  RESPONSE_LIMITS,
} from "./client.ts";
