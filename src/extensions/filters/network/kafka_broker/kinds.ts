/**
 * The Kafka schema table's vocabulary, shared by the generator (tools/gen_kafka_messages.ts) and the codec. A
 * struct is a flat list of fields, 6 numbers each: `kind | flags, versions from, versions to, nullable from,
 * nullable to, struct index` (to: inclusive; open-ended ranges end at the message's highest version; NO_VERSION
 * when never nullable).
 */

/* Field kinds (the low 4 bits of a field's first number). */
/** bool: 1 byte. */
export const K_BOOL = 0;
/** int8: 1 byte. */
export const K_INT8 = 1;
/** int16: 2 bytes. */
export const K_INT16 = 2;
/** uint16: 2 bytes. */
export const K_UINT16 = 3;
/** int32: 4 bytes. */
export const K_INT32 = 4;
/** uint32: 4 bytes. */
export const K_UINT32 = 5;
/** int64: 8 bytes. */
export const K_INT64 = 6;
/** float64: 8 bytes. */
export const K_FLOAT64 = 7;
/** uuid: 16 bytes. */
export const K_UUID = 8;
/** String: int16 length, or compact (unsigned varint length + 1) in flexible versions. */
export const K_STRING = 9;
/** Bytes: int32 length, or compact in flexible versions. */
export const K_BYTES = 10;
/** Records: encoded as bytes (the record batches are not looked into, as in Envoy). */
export const K_RECORDS = 11;
/** A nested struct (its layout is the field's struct index); nullable ones start with an int8 marker. */
export const K_STRUCT = 12;
/** A string with an int16 length even in flexible versions (the request header's client_id). */
export const K_STRING16 = 13;
/** Flag: the field is an array of its kind (int32 count, or compact count + 1 in flexible versions). */
export const F_ARRAY = 16;
/** Flag: the decoder keeps the field's value (fixed-width integers only; Produce's acks). */
export const F_CAPTURE = 32;
/** Version bound meaning "never". */
export const NO_VERSION = -1;
/** Field stride in a struct row. */
export const FIELD_STRIDE = 6;

/** Fixed widths of the scalar kinds (0 for variable-length kinds). */
export const FIXED_WIDTH: readonly number[] = [1, 1, 2, 2, 4, 4, 8, 8, 16, 0, 0, 0, 0, 0];

/** One generated API row (see messages.ts). */
export type ApiRow = readonly [
  apiKey: number,
  requestStat: string,
  responseStat: string,
  minVersion: number,
  maxVersion: number,
  firstFlexibleRequest: number,
  firstFlexibleResponse: number,
  requestStruct: number,
  responseStruct: number,
];
