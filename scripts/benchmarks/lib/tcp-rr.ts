/**
 * A TCP request/response (ping-pong) tool for the benchmarks, run inside a namespace:
 *
 *   bun tcp-rr.ts server PORT            echoes every byte back; prints "ready" once listening
 *   bun tcp-rr.ts client IP PORT SIZE SECONDS
 *                                        one connection, TCP_NODELAY; sends SIZE bytes, waits
 *                                        for all SIZE back, repeats for SECONDS; prints
 *                                        {"transactions","seconds","rate"} (rate per second)
 *
 * Exactly one request is in flight at a time, so the rate is 1 / round-trip time — through the
 * kernel path under test, and through Bun's event loop on both ends, which bounds the absolute
 * number (a C tool such as netperf TCP_RR would report more for the same path).
 */
const [mode, ...args] = process.argv.slice(2);

if (mode === "server") {
  Bun.listen({
    hostname: "0.0.0.0",
    port: Number(args[0]),
    socket: {
      open(socket) {
        socket.setNoDelay(true);
      },
      data(socket, data) {
        socket.write(data);
      },
    },
  });
  console.log("ready");
} else if (mode === "client") {
  const [host, portText, sizeText, secondsText] = args;
  const size = Number(sizeText);
  const durationMs = Number(secondsText) * 1000;
  const request = Buffer.alloc(size, 0x61);
  let transactions = 0;
  let pending = 0;
  let start = 0;
  let done = false;

  const finish = (code: number, error?: string) => {
    if (done) return;
    done = true;
    const seconds = (performance.now() - start) / 1000;
    if (error) console.error(error);
    console.log(JSON.stringify({ transactions, seconds, rate: transactions / seconds }));
    process.exit(code);
  };

  await Bun.connect({
    hostname: host!,
    port: Number(portText),
    socket: {
      open(socket) {
        socket.setNoDelay(true);
        start = performance.now();
        socket.write(request);
      },
      data(socket, data) {
        pending += data.byteLength;
        while (pending >= size) {
          pending -= size;
          transactions++;
          if (performance.now() - start >= durationMs) {
            // Exiting closes the connection; ending it here would first run close() below.
            finish(0);
            return;
          }
          socket.write(request);
        }
      },
      close() {
        finish(1, "connection closed before the run ended");
      },
      error(_socket, error) {
        finish(1, `connection error: ${error.message}`);
      },
      connectError(_socket, error) {
        finish(1, `cannot connect: ${error.message}`);
      },
    },
  });
} else {
  console.error("usage: tcp-rr.ts server PORT | client IP PORT SIZE SECONDS");
  process.exit(2);
}

export {};
