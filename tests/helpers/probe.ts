/**
 * Test client, run inside a namespace: `bun probe.ts tcp|udp IP PORT [TIMEOUT_MS]`. Sends one
 * message to an echo server; exits 0 and prints the address the server saw when the answer
 * arrives, exits 1 on timeout, refusal or error.
 */
const [protocol, host, portText, timeoutText] = process.argv.slice(2);
const port = Number(portText);
setTimeout(() => process.exit(1), Number(timeoutText ?? 1000));

function answered(data: Buffer | Uint8Array | string): never {
  process.stdout.write(String(Buffer.from(data as Uint8Array)).trim());
  process.exit(0);
}

if (protocol === "tcp") {
  Bun.connect({
    hostname: host!,
    port,
    socket: {
      open(socket) {
        socket.write("ping\n");
      },
      data(_socket, data) {
        answered(data);
      },
      error() {
        process.exit(1);
      },
      connectError() {
        process.exit(1);
      },
    },
  }).catch(() => process.exit(1));
} else {
  const socket = await Bun.udpSocket({
    socket: {
      data(_socket, data) {
        answered(data);
      },
    },
  });
  // Resend: a dropped first datagram (neighbour resolution) must not fail the probe.
  const send = () => socket.send("ping\n", port, host!);
  send();
  setInterval(send, 200);
}

export {};
