/**
 * The hubble CLI's TLS flags through dist/hubble, against the real observer and health handlers
 * served by grpc-js with TLS (certificates made with openssl for this test): server verification
 * with --tls-ca-cert-files and --tls-server-name, tls:// addresses, mTLS with client certificates,
 * and the failures when verification cannot succeed.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Server, ServerCredentials } from "@grpc/grpc-js";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { grpcServiceDefinition } from "../../src/hubble/proto/grpc.ts";
import { FlowRing } from "../../src/hubble/ring.ts";
import { healthImplementation, Observer } from "../../src/hubble/server/index.ts";

const HUBBLE = join(import.meta.dir, "../../dist/hubble");
const dir = mkdtempSync(join(tmpdir(), "hubble-tls-"));
const file = (name: string) => join(dir, name);
let server: Server;
let port = 0;
let mtlsServer: Server;
let mtlsPort = 0;

function openssl(...args: string[]): void {
  const r = Bun.spawnSync(["openssl", ...args], { stdout: "ignore", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`openssl ${args.join(" ")}: ${r.stderr.toString()}`);
}

/** A CA, a server certificate for hubble.test (and 127.0.0.1), a client certificate. */
function makeCertificates(): void {
  openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj", "/CN=test-ca", "-keyout", file("ca.key"), "-out", file("ca.pem"));
  for (const [name, san] of [
    ["server", "DNS:hubble.test,IP:127.0.0.1"],
    ["client", "DNS:client.test"],
  ]) {
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-subj", `/CN=${name}`, "-keyout", file(`${name}.key`), "-out", file(`${name}.csr`));
    Bun.write(file(`${name}.ext`), `subjectAltName=${san}\n`);
    openssl("x509", "-req", "-in", file(`${name}.csr`), "-CA", file("ca.pem"), "-CAkey", file("ca.key"), "-CAcreateserial", "-days", "1", "-extfile", file(`${name}.ext`), "-out", file(`${name}.pem`));
  }
}

async function startTlsServer(requireClientCert: boolean): Promise<[Server, number]> {
  const ring = new FlowRing(7);
  ring.write({ time: { seconds: 1_700_000_001, nanos: 0 }, verdict: 1, IP: { source: "10.0.0.1", destination: "10.0.0.2", ipVersion: 1 }, event_type: { type: 4, sub_type: 0 }, is_reply: { value: false }, Summary: "TCP Flags: SYN" });
  const s = new Server();
  s.addService(grpcServiceDefinition("observer.Observer"), new Observer({ ring, nodeName: "tls-node", version: "1" }).implementation());
  s.addService(grpcServiceDefinition("grpc.health.v1.Health"), healthImplementation());
  const creds = ServerCredentials.createSsl(
    requireClientCert ? readFileSync(file("ca.pem")) : null,
    [{ private_key: readFileSync(file("server.key")), cert_chain: readFileSync(file("server.pem")) }],
    requireClientCert,
  );
  const p = await new Promise<number>((resolve, reject) => s.bindAsync("127.0.0.1:0", creds, (err, bound) => (err ? reject(err) : resolve(bound))));
  return [s, p];
}

async function run(...args: string[]) {
  const proc = Bun.spawn([HUBBLE, ...args], { stdout: "pipe", stderr: "pipe", env: { PATH: process.env.PATH ?? "" } });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { stdout, stderr, code };
}

const FLOW_LINE = "Nov 14 22:13:21.000: 10.0.0.1 (unknown) -> 10.0.0.2 (unknown) to-endpoint FORWARDED (TCP Flags: SYN)\n";

beforeAll(async () => {
  makeCertificates();
  [server, port] = await startTlsServer(false);
  [mtlsServer, mtlsPort] = await startTlsServer(true);
});

afterAll(() => {
  server?.forceShutdown();
  mtlsServer?.forceShutdown();
  rmSync(dir, { recursive: true, force: true });
});

describe("TLS", () => {
  test("--tls with the CA and the server name", async () => {
    const r = await run("observe", "--server", `127.0.0.1:${port}`, "--tls", "--tls-ca-cert-files", file("ca.pem"), "--tls-server-name", "hubble.test");
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe(FLOW_LINE);
  });

  test("a tls:// address turns TLS on; the IP in the certificate verifies", async () => {
    const r = await run("status", "--server", `tls://127.0.0.1:${port}`, "--tls-ca-cert-files", file("ca.pem"));
    expect(r.code).toBe(0);
    expect(r.stdout).toStartWith(`Healthcheck (via 127.0.0.1:${port}): Ok\n`);
  });

  test("an unknown CA fails, unless --tls-allow-insecure", async () => {
    const bad = await run("observe", "--server", `127.0.0.1:${port}`, "--tls");
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain(`failed to connect to '127.0.0.1:${port}'`);
    const insecure = await run("observe", "--server", `127.0.0.1:${port}`, "--tls", "--tls-allow-insecure");
    expect(insecure.stdout).toBe(FLOW_LINE);
  });

  test("a server name the certificate does not hold fails", async () => {
    const r = await run("observe", "--server", `127.0.0.1:${port}`, "--tls", "--tls-ca-cert-files", file("ca.pem"), "--tls-server-name", "other.test");
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("failed to connect");
  });

  test("mTLS: the client certificate is required and presented", async () => {
    const common = ["observe", "--server", `127.0.0.1:${mtlsPort}`, "--tls", "--tls-ca-cert-files", file("ca.pem"), "--tls-server-name", "hubble.test"];
    const withCert = await run(...common, "--tls-client-cert-file", file("client.pem"), "--tls-client-key-file", file("client.key"));
    expect(withCert.stderr).toBe("");
    expect(withCert.stdout).toBe(FLOW_LINE);
    const without = await run(...common);
    expect(without.code).toBe(1);
    expect(without.stdout).toBe("");
  });
});
