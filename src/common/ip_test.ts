import assert from "node:assert/strict";
import { isIP } from "node:net";
import { ipFamily } from "./ip.ts";

Deno.test("ipFamily agrees with node:net isIP", () => {
  const cases = [
    "127.0.0.1",
    "0.0.0.0",
    "255.255.255.255",
    "256.1.1.1",
    "1.2.3",
    "1.2.3.4.5",
    "01.2.3.4",
    "1..2.3",
    "a.b.c.d",
    "",
    "localhost",
    "::",
    "::1",
    "1::",
    "fe80::1%eth0",
    "2001:db8::8a2e:370:7334",
    "2001:db8:0:0:0:0:2:1",
    "1:2:3:4:5:6:7:8",
    "1:2:3:4:5:6:7:8:9",
    "1:2:3:4:5:6:7",
    ":::",
    "1:::2",
    "::ffff:192.168.1.1",
    "1::2::3",
    "12345::",
    "g::1",
    ":1::",
    "1::2:",
    "::1%",
    "::ffff:1.2.3",
    "1:2:3:4:5:6:1.2.3.4",
    "1:2:3:4:5:6:7:1.2.3.4",
    "example.com",
    "[::1]",
  ];
  for (const c of cases) assert.equal(ipFamily(c), isIP(c), c);
});
