/** Schema of the `nuncio.bootstrap.register` bootstrap extension (kept apart from the agent so it loads cheaply). */
import { z } from "zod/mini";
import { duration } from "../config/common.ts";
import { integer } from "../config/schema_util.ts";
import {
  DEFAULT_EVERY_MS,
  DEFAULT_JITTER,
  defaultHostIp,
  httpUrlProblem,
  isIpAddress,
  type RegistrationOptions,
  serviceNameProblem,
} from "./options.ts";

const httpUrl = z.string().check(
  z.refine((s) => !httpUrlProblem(s), { error: "Expected an http:// or https:// URL" }),
);

/** Schema of the extension's typed_config (`type.googleapis.com/nuncio.register.v1.Register`). */
export const registerSchema = z.strictObject({
  service: z.string().check(z.refine((s) => !serviceNameProblem(s), {
    error: 'Expected a non-empty service name without "/"',
  })),
  port: integer.check(z.minimum(1), z.maximum(65535)),
  ip: z.optional(z.string().check(z.refine(isIpAddress, { error: "Expected an IPv4 or IPv6 address" }))),
  registry_url: httpUrl,
  every: z.optional(duration.check(z.refine((ms) => ms >= 1, { error: "Expected a positive duration" }))),
  revision: z.optional(z.string()),
  service_repo_name: z.optional(z.string()),
  tags: z.optional(z.strictObject({
    az: z.optional(z.string().check(z.minLength(1))),
    region: z.optional(z.string().check(z.minLength(1))),
    instance_id: z.optional(z.string().check(z.minLength(1))),
    canary: z.optional(z.boolean()),
    load_balancing_weight: z.optional(integer.check(z.minimum(1))),
  })),
  health_url: z.optional(httpUrl),
});

/** The parsed typed_config. */
export type RegisterConfig = z.output<typeof registerSchema>;

/** The agent options a parsed config stands for (ip defaults to the host's primary IPv4). */
export function registerOptions(
  c: RegisterConfig,
  hostIp: () => string = defaultHostIp,
): RegistrationOptions {
  const o: RegistrationOptions = {
    service: c.service,
    port: c.port,
    ip: c.ip ?? hostIp(),
    registryUrl: c.registry_url,
    everyMs: c.every ?? DEFAULT_EVERY_MS,
    jitter: DEFAULT_JITTER,
  };
  if (c.revision !== undefined) o.revision = c.revision;
  if (c.service_repo_name !== undefined) o.repo = c.service_repo_name;
  if (c.tags && Object.keys(c.tags).length) o.tags = c.tags;
  if (c.health_url !== undefined) o.healthUrl = c.health_url;
  return o;
}
