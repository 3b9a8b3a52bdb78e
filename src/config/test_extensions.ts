/** Test-only fake extensions registered under names that cannot collide with real ones (tests import this). */
import { z } from "zod/mini";
import { registry } from "../registry/registry.ts";
import { duration } from "./common.ts";

/** Name of the fake terminal network filter. */
export const FAKE_TERMINAL = "test.filters.network.terminal_fake";
/** Name of the fake non-terminal network filter. */
export const FAKE_OBSERVER = "test.filters.network.observer_fake";
/** Name of the fake access logger. */
export const FAKE_LOGGER = "test.access_loggers.fake";

if (!registry.find("network_filter", FAKE_TERMINAL, undefined)) {
  registry.register({
    name: FAKE_TERMINAL,
    typeUrls: ["type.googleapis.com/test.TerminalFake"],
    category: "network_filter",
    terminal: true,
    schema: z.strictObject({
      stat_prefix: z.string().check(z.minLength(1)),
      cluster: z.string().check(z.minLength(1)),
      idle_timeout: z.optional(duration),
      mode: z._default(z.enum(["FAST", "SLOW"]), "FAST"),
    }),
    create: () => {
      throw new Error("Fake extension must not be created");
    },
  });
  registry.register({
    name: FAKE_OBSERVER,
    typeUrls: ["type.googleapis.com/test.ObserverFake"],
    category: "network_filter",
    schema: z.strictObject({ label: z.optional(z.string()) }),
    create: () => {
      throw new Error("Fake extension must not be created");
    },
  });
  registry.register({
    name: FAKE_LOGGER,
    typeUrls: ["type.googleapis.com/test.FakeLog"],
    category: "access_logger",
    schema: z.strictObject({ path: z.string() }),
    create: () => {
      throw new Error("Fake extension must not be created");
    },
  });
}
