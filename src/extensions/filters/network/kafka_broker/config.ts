/** Config of envoy.filters.network.kafka_broker (envoy.extensions.filters.network.kafka_broker.v3.KafkaBroker). */
import { z } from "zod/mini";
import { notSupported } from "../../../../config/schema_util.ts";
import { NOT_SUPPORTED } from "../../../../config/errors.ts";

/**
 * The KafkaBroker message. nuncio's filter only sniffs (it never alters a byte), so the response rewriting
 * fields are refused: `force_response_rewrite` may only be false (its default), and
 * `id_based_broker_address_rewrite_spec` must be absent.
 */
export const kafkaBrokerSchema = z.strictObject({
  stat_prefix: z.string().check(z.minLength(1)),
  force_response_rewrite: z.optional(z.literal(false, { error: NOT_SUPPORTED })),
  id_based_broker_address_rewrite_spec: notSupported,
});

/** The parsed KafkaBroker config. */
export type KafkaBrokerConfig = z.infer<typeof kafkaBrokerSchema>;
