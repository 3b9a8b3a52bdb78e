/**
 * Redis fixed-window counters shared by every service replica: per request one MULTI/EXEC pipeline of
 * `INCRBY <key><window> <hits>` + `EXPIRE <key><window> <unit seconds>` per limited descriptor, so the
 * increments of one request are applied atomically and keys vanish when their window ends.
 */
import { Logger } from "../common/log.ts";
import type { Counter, StatsStore } from "../stats/store.ts";
import type { CounterBackend, IncrementBatch } from "./backend.ts";
import { RedisClient, type RedisClientOptions, RedisError } from "./redis_client.ts";
import { RedisReplyError, type RespArg, type RespValue } from "./resp.ts";

const log = new Logger("ratelimit.redis");

/** Options of RedisBackend. */
export interface RedisBackendOptions extends Omit<RedisClientOptions, "onStateChange"> {
  /** Prepended to every key (the reference service's CACHE_KEY_PREFIX). */
  keyPrefix?: string;
  /** Where `ratelimit.redis.*` stats go. */
  stats?: StatsStore;
}

/** Counters in Redis through a RedisClient (reconnects by itself). */
export class RedisBackend implements CounterBackend {
  readonly kind = "redis";
  readonly client: RedisClient;
  readonly #prefix: string;
  readonly #up?: Counter;
  readonly #down?: Counter;

  /** Connects to `url` in the background. */
  constructor(url: string, opts: RedisBackendOptions = {}) {
    this.#prefix = opts.keyPrefix ?? "";
    const scope = opts.stats?.scope("ratelimit.redis");
    this.#up = scope?.counter("connected");
    this.#down = scope?.counter("disconnected");
    const connected = scope?.gauge("connection_active", "never_import");
    this.client = new RedisClient(url, {
      ...opts,
      onStateChange: (up, reason) => {
        connected?.set(up ? 1 : 0);
        if (up) {
          this.#up?.inc();
          log.info(`Redis ${reason}`);
        } else {
          this.#down?.inc();
          log.warn(`Redis unavailable: ${reason}`);
        }
      },
    });
    this.client.start();
  }

  increment(batch: IncrementBatch): Promise<number[]> {
    const n = batch.keys.length;
    const cmds: RespArg[][] = new Array(2 * n + 2);
    cmds[0] = ["MULTI"];
    for (let i = 0; i < n; i++) {
      const key = this.#prefix + batch.keys[i] + batch.windows[i];
      cmds[1 + 2 * i] = ["INCRBY", key, batch.hits[i]];
      cmds[2 + 2 * i] = ["EXPIRE", key, batch.ttls[i]];
    }
    cmds[2 * n + 1] = ["EXEC"];
    return this.client.pipeline(cmds).then(execResult);
  }

  healthy(): boolean {
    return this.client.connected;
  }

  close(): Promise<void> {
    return this.client.close();
  }
}

function execResult(replies: RespValue[]): number[] {
  const exec = replies[replies.length - 1];
  if (exec instanceof RedisReplyError) throw new RedisError(`Redis EXEC failed: ${exec.message}`);
  if (!Array.isArray(exec)) throw new RedisError("Redis transaction aborted");
  const out = new Array<number>(exec.length >> 1);
  for (let i = 0; i < out.length; i++) {
    const v = exec[2 * i];
    if (typeof v !== "number") {
      throw new RedisError(`Redis INCRBY failed: ${v instanceof Error ? v.message : String(v)}`);
    }
    out[i] = v;
  }
  return out;
}
