/** The envoy.filters.network.kafka_broker extension object for the registry. */
import type { NetworkFilterCreate } from "../../../../network/filter.ts";
import type { Extension } from "../../../../registry/registry.ts";
import { loadedModule } from "../../../../registry/prepare.ts";
import { type KafkaBrokerConfig, kafkaBrokerSchema } from "./config.ts";

/** The implementation (codec and the generated Kafka schema table), loaded when a config uses the filter. */
let impl: typeof import("./filter.ts") | undefined;
const KAFKA_BROKER_NAME = "envoy.filters.network.kafka_broker";

/** envoy.filters.network.kafka_broker. */
export const networkKafkaBroker: Extension<KafkaBrokerConfig, NetworkFilterCreate<KafkaBrokerConfig>> = {
  name: KAFKA_BROKER_NAME,
  typeUrls: ["type.googleapis.com/envoy.extensions.filters.network.kafka_broker.v3.KafkaBroker"],
  category: "network_filter",
  schema: kafkaBrokerSchema as never,
  load: async () => {
    impl ??= await import("./filter.ts");
  },
  create: (config, ctx) => new (loadedModule(impl, KAFKA_BROKER_NAME).KafkaBrokerFactory)(config, ctx),
};
