/**
 * Sends small UDP datagrams to ip:port for `seconds`, as fast as one core allows or paced at
 * `rate` datagrams per second, in batches, then prints how many the kernel accepted. Run inside
 * a pod's network namespace.
 *
 * usage: bun udp-flood.ts <ip> <port> <seconds> [rate]
 */
const [ip, portText, secondsText, rateText] = process.argv.slice(2);
const port = Number(portText);
const started = performance.now();
const until = started + Number(secondsText) * 1000;
const rate = rateText === undefined ? Infinity : Number(rateText);
// Nobody need listen: the ICMP port-unreachable answers come back as socket errors, ignored here and on send.
const socket = await Bun.udpSocket({ socket: { error() {} } });
const payload = new Uint8Array(16);
const BATCH = 64;
const batch: (Uint8Array | string | number)[] = [];
for (let i = 0; i < BATCH; i++) batch.push(payload, port, ip!);
let sent = 0;
let attempted = 0;
for (let now = performance.now(); now < until; now = performance.now()) {
  // Paced: no more than the rate allows by now; the pause lets the receiver's side run.
  if (attempted + BATCH > ((now - started) / 1000) * rate) {
    await Bun.sleep(1);
    continue;
  }
  attempted += BATCH;
  try {
    sent += socket.sendMany(batch);
  } catch {
    // A port-unreachable answer reported on this send: the batch counts as not sent.
  }
}
socket.close();
console.log(sent);

export {};
