/**
 * The registry in Redis, shared by any number of registry replicas. Layout under a prefix (default
 * `nuncio:discovery:`): `svc:<service>` a hash `ip:port` -> host JSON (with last_check_in); `checkins` a sorted
 * set `<service>\n<ip:port>` scored by last_check_in, which the sweeper scans; `services` the set of service
 * names; `repo:<repo>` the services a repo registered. A check-in is one MULTI/EXEC; sweeping and deregistering
 * are Lua scripts, so replicas sweeping at the same time, or a check-in racing a sweep, never leave a hash
 * entry without its score or the other way round.
 */
import { RedisClient } from "../ratelimit/redis_client.ts";
import { RedisReplyError, type RespValue } from "../ratelimit/resp.ts";
import { compareHosts, type RegistryStore } from "./store.ts";
import { hostKey, type HostRecord, type Registration } from "./types.ts";

/** Removes up to ARGV[3] members scored before ARGV[2]; returns how many. */
const SWEEP_LUA = `
local p = ARGV[1]
local members = redis.call('ZRANGEBYSCORE', p .. 'checkins', '-inf', '(' .. ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))
for _, m in ipairs(members) do
  local nl = string.find(m, '\\n', 1, true)
  local svc = string.sub(m, 1, nl - 1)
  local key = p .. 'svc:' .. svc
  redis.call('HDEL', key, string.sub(m, nl + 1))
  redis.call('ZREM', p .. 'checkins', m)
  if redis.call('HLEN', key) == 0 then redis.call('SREM', p .. 'services', svc) end
end
return #members
`;

/** Removes every `ARGV[3]:<port>` field of service ARGV[2]; returns how many. */
const DEREGISTER_LUA = `
local p, svc, prefix = ARGV[1], ARGV[2], ARGV[3] .. ':'
local key = p .. 'svc:' .. svc
local n = 0
for _, f in ipairs(redis.call('HKEYS', key)) do
  if string.sub(f, 1, #prefix) == prefix and string.find(string.sub(f, #prefix + 1), '^%d+$') then
    redis.call('HDEL', key, f)
    redis.call('ZREM', p .. 'checkins', svc .. '\\n' .. f)
    n = n + 1
  end
end
if redis.call('HLEN', key) == 0 then redis.call('SREM', p .. 'services', svc) end
return n
`;

const SWEEP_BATCH = 1000;

/** Options of RedisStore. */
export interface RedisStoreOptions {
  /** Key prefix (default `nuncio:discovery:`). */
  keyPrefix?: string;
  /** Command timeout (default 1000 ms). */
  commandTimeoutMs?: number;
  /** Told when the connection comes up or goes down. */
  onStateChange?: (up: boolean, reason: string) => void;
}

/** Hosts in Redis (see the file comment); starts connecting at construction. */
export class RedisStore implements RegistryStore {
  readonly kind = "redis";
  readonly client: RedisClient;
  readonly #p: string;

  /** Connects to `url` (redis://host:port[/db]) in the background, reconnecting until closed. */
  constructor(url: string, opts: RedisStoreOptions = {}) {
    this.#p = opts.keyPrefix ?? "nuncio:discovery:";
    this.client = new RedisClient(url, {
      commandTimeoutMs: opts.commandTimeoutMs,
      onStateChange: opts.onStateChange,
    });
    this.client.start();
  }

  /** See RegistryStore.register: one MULTI/EXEC. */
  async register(service: string, host: Registration, now: number): Promise<void> {
    const field = hostKey(host.ip_address, host.port);
    const rec: HostRecord = { service, ...host, last_check_in: now };
    const cmds = [
      ["MULTI"],
      ["HSET", this.#svcKey(service), field, JSON.stringify(rec)],
      ["ZADD", `${this.#p}checkins`, now, `${service}\n${field}`],
      ["SADD", `${this.#p}services`, service],
    ];
    if (host.service_repo_name) cmds.push(["SADD", `${this.#p}repo:${host.service_repo_name}`, service]);
    cmds.push(["EXEC"]);
    const replies = await this.client.pipeline(cmds);
    for (const r of replies) if (r instanceof RedisReplyError) throw r;
    const exec = replies[replies.length - 1];
    if (!Array.isArray(exec)) throw new Error("Redis MULTI/EXEC was aborted");
    for (const r of exec) if (r instanceof RedisReplyError) throw r;
  }

  /** See RegistryStore.hosts: one HGETALL. */
  async hosts(service: string): Promise<HostRecord[]> {
    return parseHash(await this.#cmd(["HGETALL", this.#svcKey(service)])).sort(compareHosts);
  }

  /** See RegistryStore.hostsOfRepo: the repo's services, then one pipelined HGETALL each. */
  async hostsOfRepo(repo: string): Promise<HostRecord[]> {
    const names = await this.#cmd(["SMEMBERS", `${this.#p}repo:${repo}`]);
    if (!Array.isArray(names) || names.length === 0) return [];
    const replies = await this.client.pipeline(names.map((n) => ["HGETALL", this.#svcKey(String(n))]));
    const out: HostRecord[] = [];
    for (const r of replies) {
      if (r instanceof RedisReplyError) throw r;
      for (const h of parseHash(r)) if (h.service_repo_name === repo) out.push(h);
    }
    return out.sort(compareHosts);
  }

  /** See RegistryStore.deregister: one script. */
  async deregister(service: string, ip: string): Promise<number> {
    return Number(await this.#cmd(["EVAL", DEREGISTER_LUA, 0, this.#p, service, ip]));
  }

  /** See RegistryStore.sweep: scripts of up to 1,000 removals until none is left. */
  async sweep(cutoff: number): Promise<number> {
    let total = 0;
    for (;;) {
      const n = Number(await this.#cmd(["EVAL", SWEEP_LUA, 0, this.#p, cutoff, SWEEP_BATCH]));
      total += n;
      if (n < SWEEP_BATCH) return total;
    }
  }

  /** See RegistryStore.services. */
  async services(): Promise<string[]> {
    const r = await this.#cmd(["SMEMBERS", `${this.#p}services`]);
    return Array.isArray(r) ? r.map(String).sort() : [];
  }

  /** True while connected. */
  healthy(): boolean {
    return this.client.connected;
  }

  /** Closes the connection. */
  close(): Promise<void> {
    return this.client.close();
  }

  #svcKey(service: string): string {
    return `${this.#p}svc:${service}`;
  }

  async #cmd(args: (string | number)[]): Promise<RespValue> {
    const r = await this.client.command(args);
    if (r instanceof RedisReplyError) throw r;
    return r;
  }
}

function parseHash(r: RespValue): HostRecord[] {
  if (!Array.isArray(r)) return [];
  const out: HostRecord[] = [];
  for (let i = 1; i < r.length; i += 2) {
    try {
      out.push(JSON.parse(String(r[i])) as HostRecord);
    } catch {
      // a corrupt entry is skipped; the next check-in rewrites it
    }
  }
  return out;
}
