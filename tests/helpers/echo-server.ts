/**
 * Test echo server, run inside a namespace: `bun echo-server.ts tcp|udp PORT [tcp|udp PORT ...]`.
 * Every message is answered with the address the server saw it come from, so tests can tell
 * masqueraded traffic from direct traffic. Prints "ready" once listening on every port.
 * Socket errors are ignored: an answer to a probe that already went away comes back as ICMP port
 * unreachable (ECONNREFUSED on the UDP socket), which must not stop the server.
 */
const args = process.argv.slice(2);
if (args.length === 0 || args.length % 2 !== 0) {
  console.error(`usage: echo-server.ts tcp|udp PORT [tcp|udp PORT ...]`);
  process.exit(2);
}

for (let i = 0; i < args.length; i += 2) {
  const protocol = args[i];
  const port = Number(args[i + 1]);
  if (protocol === "tcp") {
    Bun.listen({
      hostname: "0.0.0.0",
      port,
      socket: {
        data(socket) {
          socket.write(`${socket.remoteAddress}\n`);
        },
        error() {},
      },
    });
  } else if (protocol === "udp") {
    await Bun.udpSocket({
      hostname: "0.0.0.0",
      port,
      socket: {
        data(socket, _data, remotePort, remoteAddress) {
          socket.send(`${remoteAddress}\n`, remotePort, remoteAddress);
        },
        error() {},
      },
    });
  } else {
    console.error(`usage: echo-server.ts tcp|udp PORT [tcp|udp PORT ...]`);
    process.exit(2);
  }
}
console.log("ready");

export {};
