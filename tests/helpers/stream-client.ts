/**
 * A long-lived TCP connection for tests, run inside a namespace:
 * `bun stream-client.ts IP PORT INTERVAL_MS`. Sends a line every interval over ONE connection to
 * an echo server and counts the answers. On SIGTERM it prints {"sent","received","closed",
 * "lastReceivedAt"} (epoch ms of the last answer) and exits; if the connection breaks it prints
 * the same with closed=true and exits 1.
 */
const [host, portText, intervalText] = process.argv.slice(2);
let sent = 0;
let received = 0;
let closed = false;
let lastReceivedAt = 0;

function report(code: number): never {
  process.stdout.write(`${JSON.stringify({ sent, received, closed, lastReceivedAt })}\n`);
  process.exit(code);
}

const socket = await Bun.connect({
  hostname: host!,
  port: Number(portText),
  socket: {
    data(_socket, data) {
      received += Buffer.from(data).toString().split("\n").filter(Boolean).length;
      lastReceivedAt = Date.now();
    },
    close() {
      closed = true;
      report(1);
    },
    error() {
      closed = true;
      report(1);
    },
  },
});

setInterval(() => {
  socket.write("ping\n");
  sent++;
}, Number(intervalText ?? 20));
process.on("SIGTERM", () => report(0));

export {};
