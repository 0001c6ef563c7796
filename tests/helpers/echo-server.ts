/**
 * Test echo server, run inside a namespace: `bun echo-server.ts tcp|udp PORT`. Every message is
 * answered with the address the server saw it come from, so tests can tell masqueraded traffic
 * from direct traffic. Prints "ready" once listening.
 */
const [protocol, portText] = process.argv.slice(2);
const port = Number(portText);

if (protocol === "tcp") {
  Bun.listen({
    hostname: "0.0.0.0",
    port,
    socket: {
      data(socket) {
        socket.write(`${socket.remoteAddress}\n`);
      },
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
    },
  });
} else {
  console.error(`usage: echo-server.ts tcp|udp PORT`);
  process.exit(2);
}
console.log("ready");

export {};
