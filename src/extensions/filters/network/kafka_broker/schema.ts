/** Lookups on the generated Kafka schema table (messages.ts, written by tools/gen_kafka_messages.ts). */
import { APIS, STRUCTS } from "./messages.ts";
import { NO_VERSION } from "./kinds.ts";

export * from "./kinds.ts";

/** One API as the codec sees it. */
export interface ApiInfo {
  readonly key: number;
  readonly requestStat: string;
  readonly responseStat: string;
  readonly minVersion: number;
  readonly maxVersion: number;
  readonly firstFlexibleRequest: number;
  readonly firstFlexibleResponse: number;
  readonly requestStruct: number;
  readonly responseStruct: number;
}

/** Every API of the table, indexed by api_key (holes are undefined). */
export const API_BY_KEY: readonly (ApiInfo | undefined)[] = (() => {
  const out: (ApiInfo | undefined)[] = [];
  for (const r of APIS) {
    out[r[0]] = {
      key: r[0],
      requestStat: r[1],
      responseStat: r[2],
      minVersion: r[3],
      maxVersion: r[4],
      firstFlexibleRequest: r[5],
      firstFlexibleResponse: r[6],
      requestStruct: r[7],
      responseStruct: r[8],
    };
  }
  return out;
})();

/** Every API, in api_key order. */
export const ALL_APIS: readonly ApiInfo[] = API_BY_KEY.filter((a): a is ApiInfo => a !== undefined);

/** The struct layouts of the table. */
export { STRUCTS };

/** The API of `key` when `version` is one the table defines, else undefined. */
export function apiFor(key: number, version: number): ApiInfo | undefined {
  const a = key >= 0 ? API_BY_KEY[key] : undefined;
  return a && version >= a.minVersion && version <= a.maxVersion ? a : undefined;
}

/** True when `version` of `api` uses flexible (compact, tagged) encoding for requests. */
export function requestFlexible(api: ApiInfo, version: number): boolean {
  return api.firstFlexibleRequest !== NO_VERSION && version >= api.firstFlexibleRequest;
}

/** True when `version` of `api` uses flexible encoding for responses. */
export function responseFlexible(api: ApiInfo, version: number): boolean {
  return api.firstFlexibleResponse !== NO_VERSION && version >= api.firstFlexibleResponse;
}

/**
 * Request header version: 0 (no client_id) for ControlledShutdown v0, 2 (tagged fields) for flexible versions,
 * else 1.
 */
export function requestHeaderVersion(api: ApiInfo, version: number): 0 | 1 | 2 {
  if (api.key === 7 && version === 0) return 0;
  return requestFlexible(api, version) ? 2 : 1;
}

/** Response header version: 1 (tagged fields) for flexible versions except ApiVersions, which is always 0. */
export function responseHeaderVersion(api: ApiInfo, version: number): 0 | 1 {
  if (api.key === 18) return 0;
  return responseFlexible(api, version) ? 1 : 0;
}
