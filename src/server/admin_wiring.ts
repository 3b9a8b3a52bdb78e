/** Connects the admin API to the running server (filled in when the admin app lands). */
import type { Bootstrap } from "../config/bootstrap.ts";
import type { Server } from "./server.ts";

/** A running admin listener. */
export interface AdminHandle {
  address: string;
  close(): Promise<void>;
}

/** Starts the admin listener configured in `bootstrap.admin`, or returns null when there is none. */
export function startAdmin(_server: Server, _bootstrap: Bootstrap): Promise<AdminHandle | null> {
  return Promise.resolve(null);
}
