/**
 * Sends small UDP datagrams to ip:port as fast as one core allows for `seconds`, in batches,
 * then prints how many the kernel accepted. Run inside a pod's network namespace.
 *
 * usage: bun udp-flood.ts <ip> <port> <seconds>
 */
const [ip, portText, secondsText] = process.argv.slice(2);
const port = Number(portText);
const until = Date.now() + Number(secondsText) * 1000;
const socket = await Bun.udpSocket({});
const payload = new Uint8Array(16);
const batch: (Uint8Array | string | number)[] = [];
for (let i = 0; i < 64; i++) batch.push(payload, port, ip!);
let sent = 0;
while (Date.now() < until) {
  for (let i = 0; i < 16; i++) sent += socket.sendMany(batch);
}
socket.close();
console.log(sent);

export {};
