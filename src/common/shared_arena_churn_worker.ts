/** Test worker for shared_arena_test.ts: churns shared keys and counts into a key of its own. */
import { SharedArena } from "./shared_arena.ts";

self.onmessage = (e: MessageEvent<{ buffer: SharedArrayBuffer; id: number; rounds: number }>) => {
  const { buffer, id, rounds } = e.data;
  const arena = SharedArena.attach(buffer);
  try {
    const own = arena.slot(`own/${id}`, 4);
    for (let r = 0; r < rounds; r++) {
      const key = `churn/${(r * 7 + id) % 16}`;
      const s = arena.slot(key, 4);
      Atomics.add(s, 0, 1);
      arena.release(key);
      Atomics.add(own, 1, 1);
    }
    self.postMessage({ ok: true });
  } catch (err) {
    self.postMessage({ ok: false, error: String(err) });
  }
};
