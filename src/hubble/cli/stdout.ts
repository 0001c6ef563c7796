/**
 * Buffered writes to file descriptor 1 with fs.writeSync: touching process.stdout costs ~20 ms
 * of start-up in a compiled binary. A full pipe (EAGAIN) is waited out; a closed one (EPIPE,
 * e.g. `| head`) ends the process quietly, as a Go program does.
 */
import { writeSync } from "node:fs";

const FLUSH_AT = 64 * 1024;
const sleeper = new Int32Array(new SharedArrayBuffer(4));

export function writeAllSync(fd: number, text: string): void {
  let buf = Buffer.from(text);
  while (buf.length > 0) {
    try {
      const n = writeSync(fd, buf);
      buf = buf.subarray(n);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "EAGAIN") Atomics.wait(sleeper, 0, 0, 1);
      else if (code === "EPIPE") process.exit(0);
      else throw err;
    }
  }
}

export class StdoutBuffer {
  private parts: string[] = [];
  private size = 0;

  constructor(private readonly fd = 1) {}

  write(text: string): void {
    this.parts.push(text);
    this.size += text.length;
    if (this.size >= FLUSH_AT) this.flush();
  }

  flush(): void {
    if (this.parts.length === 0) return;
    const text = this.parts.join("");
    this.parts = [];
    this.size = 0;
    writeAllSync(this.fd, text);
  }
}
