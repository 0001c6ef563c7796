/**
 * The CNI plugin's blocking HTTP client (src/agent/api/unix-http.ts) against a real Bun.serve on
 * a unix socket, run in another process: the client blocks its thread, so the server cannot
 * share it.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Subprocess } from "bun";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseResponse, unixHttpRequest } from "../../src/agent/api/unix-http.ts";

const SERVER = `
const socket = process.argv[1];
Bun.serve({
  unix: socket,
  async fetch(request) {
    const url = new URL(request.url);
    if (url.pathname === "/echo") {
      const body = await request.text();
      return Response.json({ method: request.method, type: request.headers.get("content-type"), body }, { status: 201 });
    }
    if (url.pathname === "/chunked") {
      const stream = new ReadableStream({ start(c) { c.enqueue(new TextEncoder().encode('{"part":')); c.enqueue(new TextEncoder().encode('"two"}')); c.close(); } });
      return new Response(stream, { status: 200 });
    }
    if (url.pathname === "/slow") { await Bun.sleep(2000); return new Response("late"); }
    return Response.json({ message: "no such path" }, { status: 404 });
  },
});
console.log("ready");
`;

describe("blocking HTTP over a unix socket", () => {
  const dir = mkdtempSync(join(tmpdir(), "unix-http-"));
  const socketPath = join(dir, "api.sock");
  let server: Subprocess<"ignore", "pipe", "inherit">;

  beforeAll(async () => {
    server = Bun.spawn([process.execPath, "-e", SERVER, socketPath], { stdout: "pipe", stderr: "inherit" });
    const reader = server.stdout.getReader();
    const { value } = await reader.read();
    expect(new TextDecoder().decode(value)).toContain("ready");
    reader.releaseLock();
  });

  afterAll(() => {
    server?.kill();
    rmSync(dir, { recursive: true, force: true });
  });

  const request = (path: string, extra: { method?: string; body?: string; timeoutMs?: number } = {}) =>
    unixHttpRequest({
      socketPath,
      method: extra.method ?? "GET",
      path,
      timeoutMs: extra.timeoutMs ?? 5000,
      ...(extra.body === undefined ? {} : { body: extra.body, headers: { "content-type": "application/json" } }),
    });

  test("a request with a body gets the status and body of the answer", async () => {
    const body = JSON.stringify({ "netns-path": "/var/run/netns/pod", note: "ünïcode" });
    const response = await request("/echo", { method: "PUT", body });
    expect(response.status).toBe(201);
    expect(JSON.parse(response.text)).toEqual({ method: "PUT", type: "application/json", body });
  });

  test("an error status comes back as it is", async () => {
    expect(await request("/nothing")).toEqual({ status: 404, text: '{"message":"no such path"}' });
  });

  test("a chunked answer is put back together", async () => {
    expect(await request("/chunked")).toEqual({ status: 200, text: '{"part":"two"}' });
  });

  test("no socket, a path nobody listens on, and a slow answer fail with the system's code", async () => {
    await expect(unixHttpRequest({ socketPath: join(dir, "missing.sock"), method: "GET", path: "/", timeoutMs: 1000 })).rejects.toMatchObject({ code: "ENOENT" });
    writeFileSync(join(dir, "plain-file"), "");
    await expect(unixHttpRequest({ socketPath: join(dir, "plain-file"), method: "GET", path: "/", timeoutMs: 1000 })).rejects.toMatchObject({ code: "ECONNREFUSED" });
    await expect(request("/slow", { timeoutMs: 200 })).rejects.toMatchObject({ code: "ETIMEDOUT" });
  });
});

describe("parsing an answer", () => {
  const bytes = (text: string) => new TextEncoder().encode(text);

  test("the body is cut at Content-Length", () => {
    expect(parseResponse(bytes("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"))).toEqual({ status: 200, text: "{}" });
    expect(parseResponse(bytes("HTTP/1.1 204 No Content\r\n\r\n"))).toEqual({ status: 204, text: "" });
  });

  test("an answer cut short, an empty one, or one that is not HTTP is a protocol error", () => {
    expect(() => parseResponse(bytes("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}"))).toThrow("in the middle of its answer");
    expect(() => parseResponse(bytes(""))).toThrow("closed the connection without answering");
    expect(() => parseResponse(bytes("SSH-2.0-OpenSSH\r\n\r\n"))).toThrow("not HTTP");
    expect(() => parseResponse(bytes("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab"))).toThrow("cut short");
  });
});
