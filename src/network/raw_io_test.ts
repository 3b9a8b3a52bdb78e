import assert from "node:assert/strict";
import { connRead, connWrite, connWriteAll, RAW_IO_AVAILABLE, readRoom } from "./raw_io.ts";

async function pair(): Promise<{ a: Deno.TcpConn; b: Deno.TcpConn; close: () => void }> {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const [a, b] = await Promise.all([Deno.connect({ port: l.addr.port }), l.accept()]);
  l.close();
  return {
    a,
    b,
    close: () => {
      for (const c of [a, b]) {
        try {
          c.close();
        } catch {
          // closed by the test
        }
      }
    },
  };
}

Deno.test("raw_io on real sockets", async (t) => {
  await t.step(
    "the pinned Deno exposes the resource ops (a runtime upgrade that moves them fails here)",
    () => {
      assert.equal(RAW_IO_AVAILABLE, true);
    },
  );

  await t.step("bytes go both ways; end of stream reads as 0 or null", async () => {
    const { a, b, close } = await pair();
    try {
      const n = await connWrite(a, new TextEncoder().encode("ping"));
      assert.equal(n, 4);
      const buf = new Uint8Array(16);
      let got = 0;
      while (got < 4) got += (await connRead(b, buf.subarray(got))) ?? 0;
      assert.equal(new TextDecoder().decode(buf.subarray(0, 4)), "ping");
      const big = new Uint8Array(4 * 1024 * 1024).fill(7);
      const reader = (async () => {
        let total = 0;
        for (;;) {
          const r = await connRead(a, buf);
          if (!r) return total;
          total += r;
        }
      })();
      await connWriteAll(b, big);
      b.closeWrite();
      assert.equal(await reader, big.length);
    } finally {
      close();
    }
  });

  await t.step("closing the connection ends a pending read", async () => {
    const { a, b, close } = await pair();
    const pending = connRead(a, new Uint8Array(8)).then((n) => n ?? 0, () => -1);
    a.close();
    assert.ok((await pending) <= 0);
    b.close();
    close();
  });

  await t.step("an object that is not a runtime connection goes through its own methods", async () => {
    const calls: string[] = [];
    const fake = {
      read: (p: Uint8Array) => (calls.push(`read ${p.length}`), Promise.resolve(null)),
      write: (p: Uint8Array) => (calls.push(`write ${p.length}`), Promise.resolve(Math.min(2, p.length))),
    } as unknown as Deno.Conn;
    assert.equal(await connRead(fake, new Uint8Array(5)), null);
    await connWriteAll(fake, new Uint8Array(5));
    assert.deepEqual(calls, ["read 5", "write 5", "write 3", "write 1"]);
  });
});

Deno.test("readRoom: unparsed bytes move to the front, or a full buffer doubles", () => {
  const buf = new Uint8Array([1, 2, 3, 4]);
  assert.equal(readRoom(buf, 2, 4), buf);
  assert.deepEqual([...buf.subarray(0, 2)], [3, 4]);
  const grown = readRoom(new Uint8Array([5, 6, 7, 8]), 0, 4);
  assert.equal(grown.length, 8);
  assert.deepEqual([...grown.subarray(0, 4)], [5, 6, 7, 8]);
});
