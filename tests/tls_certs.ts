/**
 * Test PKI made with openssl inside the test: a CA (CA:TRUE) and leaf certificates (CA:FALSE) signed by it,
 * since Deno's TLS client rejects a self-signed certificate used as its own CA.
 */
import { run } from "./peers.ts";

/** A directory holding ca.crt / ca.key and leaves `<name>.crt` / `<name>.key`. */
export interface TestPki extends AsyncDisposable {
  dir: string;
  /** Path of the CA certificate. */
  caPath: string;
  /** PEM of the CA certificate. */
  caPem: string;
  /**
   * Issues (or re-issues, overwriting) a leaf for `cn` with the given SANs ("DNS:x", "URI:y", "IP:z"); with
   * `clientAuth` it may also be used as a client certificate (extendedKeyUsage serverAuth,clientAuth).
   */
  leaf(
    name: string,
    cn: string,
    sans: string[],
    opts?: { clientAuth?: boolean },
  ): Promise<{ cert: string; key: string }>;
  /** Serial number (hex, upper case) of a PEM certificate file. */
  serialOf(path: string): Promise<string>;
  close(): Promise<void>;
}

async function openssl(args: string[]): Promise<string> {
  const r = await run("openssl", args);
  if (r.code !== 0) throw new Error(`openssl ${args[0]} failed: ${r.stderr}`);
  return r.stdout;
}

/** Creates a CA in a fresh temp directory. */
export async function makePki(): Promise<TestPki> {
  const dir = await Deno.makeTempDir({ prefix: "nuncio_tls_" });
  const caPath = `${dir}/ca.crt`;
  await openssl([
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
    "-keyout",
    `${dir}/ca.key`,
    "-out",
    caPath,
    "-days",
    "2",
    "-subj",
    "/CN=nuncio test CA",
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
  ]);
  const leaf = async (name: string, cn: string, sans: string[], opts: { clientAuth?: boolean } = {}) => {
    const cert = `${dir}/${name}.crt`;
    const key = `${dir}/${name}.key`;
    // write next to the target, then rename, so a watcher never sees a half-written file
    const tmp = `${dir}/.${name}.${crypto.randomUUID()}`;
    await openssl([
      "req",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-keyout",
      `${tmp}.key`,
      "-out",
      `${tmp}.csr`,
      "-subj",
      `/CN=${cn}`,
    ]);
    await Deno.writeTextFile(
      `${tmp}.ext`,
      `basicConstraints=CA:FALSE\nsubjectAltName=${sans.join(",")}\nextendedKeyUsage=serverAuth${
        opts.clientAuth ? ",clientAuth" : ""
      }\n`,
    );
    await openssl([
      "x509",
      "-req",
      "-in",
      `${tmp}.csr`,
      "-CA",
      caPath,
      "-CAkey",
      `${dir}/ca.key`,
      "-set_serial",
      `0x${crypto.randomUUID().replaceAll("-", "").slice(0, 16)}`,
      "-out",
      `${tmp}.crt`,
      "-days",
      "2",
      "-extfile",
      `${tmp}.ext`,
    ]);
    await Deno.rename(`${tmp}.key`, key);
    await Deno.rename(`${tmp}.crt`, cert);
    await Deno.remove(`${tmp}.csr`);
    await Deno.remove(`${tmp}.ext`);
    return { cert, key };
  };
  const serialOf = async (path: string) =>
    (await openssl(["x509", "-in", path, "-noout", "-serial"])).trim().replace(/^serial=/, "").toUpperCase();
  const close = async () => {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  return {
    dir,
    caPath,
    caPem: await Deno.readTextFile(caPath),
    leaf,
    serialOf,
    close,
    [Symbol.asyncDispose]: close,
  };
}

/** The DownstreamTlsContext transport_socket serving `name`'s files from `pki`. */
export function downstreamTls(pki: TestPki, names: string[], alpn: string[] = []): Record<string, unknown> {
  return {
    name: "envoy.transport_sockets.tls",
    typed_config: {
      "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
      common_tls_context: {
        alpn_protocols: alpn,
        tls_certificates: names.map((n) => ({
          certificate_chain: { filename: `${pki.dir}/${n}.crt` },
          private_key: { filename: `${pki.dir}/${n}.key` },
        })),
      },
    },
  };
}

/** What `openssl s_client` saw: the leaf's subject CN, its serial and the negotiated ALPN ("" when none). */
export async function sClient(
  port: number,
  opts: { servername?: string; alpn?: string[]; caPath: string },
): Promise<{ cn: string; serial: string; alpn: string; verified: boolean; raw: string }> {
  const args = ["s_client", "-connect", `127.0.0.1:${port}`, "-CAfile", opts.caPath];
  if (opts.servername) args.push("-servername", opts.servername);
  else args.push("-noservername");
  if (opts.alpn?.length) args.push("-alpn", opts.alpn.join(","));
  const hs = await run("openssl", args, "");
  const x509 = await run("openssl", ["x509", "-noout", "-serial", "-subject"], hs.stdout);
  const raw = `${hs.stdout}\n${hs.stderr}\n${x509.stdout}`;
  return {
    cn: /subject=.*CN\s*=\s*([^,\n/]+)/.exec(raw)?.[1]?.trim() ?? "",
    serial: /serial=([0-9A-F]+)/i.exec(raw)?.[1]?.toUpperCase() ?? "",
    alpn: /ALPN protocol: (\S+)/.exec(raw)?.[1] ?? "",
    verified: /Verify return code: 0 \(ok\)/.test(raw),
    raw,
  };
}

/**
 * A PEM CRL signed by `pki`'s CA revoking the certificates at `revoked` (paths), made with `openssl ca`;
 * `nextUpdate` (openssl's YYMMDDHHMMSSZ) makes an expired one. Returns the CRL's path.
 */
export async function makeCrl(
  pki: TestPki,
  revoked: string[],
  opts: { lastUpdate?: string; nextUpdate?: string } = {},
): Promise<string> {
  const d = await Deno.makeTempDir({ dir: pki.dir, prefix: "crl_" });
  await Deno.writeTextFile(`${d}/index.txt`, "");
  await Deno.writeTextFile(`${d}/crlnumber`, "01\n");
  await Deno.writeTextFile(
    `${d}/ca.cnf`,
    `[ca]\ndefault_ca = c\n[c]\ndatabase = ${d}/index.txt\ncrlnumber = ${d}/crlnumber\n` +
      "default_md = sha256\ndefault_crl_days = 2\n",
  );
  const ca = ["ca", "-config", `${d}/ca.cnf`, "-keyfile", `${pki.dir}/ca.key`, "-cert", pki.caPath];
  for (const r of revoked) await openssl([...ca, "-revoke", r]);
  const dates = [
    ...(opts.lastUpdate ? ["-crl_lastupdate", opts.lastUpdate] : []),
    ...(opts.nextUpdate ? ["-crl_nextupdate", opts.nextUpdate] : []),
  ];
  await openssl([...ca, "-gencrl", ...dates, "-out", `${d}/ca.crl`]);
  return `${d}/ca.crl`;
}
