/** envoy.config.metrics.v3.DogStatsdSink: a UDP DogStatsD server, the name prefix and the datagram budget. */
import { z } from "zod/mini";
import { uint64 } from "../../../config/common.ts";
import { statsdAddressSchema } from "../common/statsd.ts";

/** The DogStatsdSink schema. */
export const dogStatsdSinkSchema = z.strictObject({
  address: statsdAddressSchema,
  /** Empty: "envoy". */
  prefix: z._default(z.string(), ""),
  /** Lines are joined with "\n" into datagrams up to this size; absent: one line per datagram. */
  max_bytes_per_datagram: z.optional(uint64.check(z.minimum(1))),
});

/** The parsed DogStatsdSink. */
export type DogStatsdSinkConfig = z.output<typeof dogStatsdSinkSchema>;
