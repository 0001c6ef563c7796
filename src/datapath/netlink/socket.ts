/**
 * An AF_NETLINK/NETLINK_ROUTE socket and the three request patterns of rtnetlink: a change
 * acknowledged by NLMSG_ERROR, a get answered by one message, and a multi-part dump ended by
 * NLMSG_DONE. Every receive has a timeout, so a lost reply fails instead of hanging the agent.
 *
 * The socket belongs to the network namespace of the thread that created it, for its lifetime.
 */
import { SyscallError } from "../errors.ts";
import {
  AF_NETLINK,
  check,
  EAGAIN,
  EINTR,
  errno,
  ETIMEDOUT,
  libc,
  MSG_PEEK,
  MSG_TRUNC,
  NETLINK_CAP_ACK,
  NETLINK_EXT_ACK,
  NETLINK_GET_STRICT_CHK,
  NETLINK_ROUTE,
  SO_RCVTIMEO,
  SOCK_CLOEXEC,
  SOCK_RAW,
  SOL_NETLINK,
  SOL_SOCKET,
} from "../libc.ts";
import { concatBytes } from "../bytes.ts";
import { timeval } from "../libc-io.ts";
import {
  NLM_F_ACK,
  NLM_F_DUMP,
  NLM_F_DUMP_INTR,
  NLM_F_REQUEST,
  NLMSG_DONE,
  NLMSG_ERROR,
  NLMSG_NOOP,
  NLMSG_OVERRUN,
} from "./constants.ts";
import { type MessageBuilder, type NetlinkMessage, parseErrorReply, parseMessages, Struct } from "./message.ts";

export const DEFAULT_TIMEOUT_MS = 5000;

/** One change request and what it does, for error messages ("add route default via ..."). */
export interface NetlinkStep {
  operation: string;
  request: MessageBuilder;
}
/** A dump the kernel flags inconsistent (NLM_F_DUMP_INTR: the table changed meanwhile) is retried. */
const DUMP_ATTEMPTS = 5;
const SOCKADDR_NL_LEN = 12;

/** struct sockaddr_nl; port id 0 is the kernel (as a destination) or "assign one" (in bind). */
function sockaddrNl(portId: number): Uint8Array {
  return new Struct(SOCKADDR_NL_LEN).setU16(0, AF_NETLINK).setU32(4, portId).bytes;
}
const KERNEL = sockaddrNl(0);

export interface SocketOptions {
  /** How long one receive may wait for the kernel (default 5000 ms). */
  timeoutMs?: number;
}

export class NetlinkSocket {
  private seq = 0;
  private closed = false;
  // 64 KiB is above the kernel's largest dump chunk (32 KiB); a bigger datagram grows it.
  private receiveBuffer = new Uint8Array(64 * 1024);

  private constructor(
    readonly fd: number,
    readonly portId: number,
    readonly timeoutMs: number,
  ) {}

  static open(options: SocketOptions = {}): NetlinkSocket {
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const fd = check("open rtnetlink socket", libc.socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
    try {
      // Extended acks carry the kernel's reason text; capped acks skip echoing our request back;
      // strict checking makes the kernel reject malformed requests instead of ignoring fields.
      setIntOption(fd, SOL_NETLINK, NETLINK_EXT_ACK, 1, "NETLINK_EXT_ACK");
      setIntOption(fd, SOL_NETLINK, NETLINK_CAP_ACK, 1, "NETLINK_CAP_ACK");
      setIntOption(fd, SOL_NETLINK, NETLINK_GET_STRICT_CHK, 1, "NETLINK_GET_STRICT_CHK");
      check("set SO_RCVTIMEO on rtnetlink socket", libc.setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, timeval(timeoutMs), 16));
      check("bind rtnetlink socket", libc.bind(fd, sockaddrNl(0), SOCKADDR_NL_LEN));
      const address = new Uint8Array(SOCKADDR_NL_LEN);
      const addressLength = Uint32Array.of(SOCKADDR_NL_LEN);
      check("getsockname of rtnetlink socket", libc.getsockname(fd, address, addressLength));
      return new NetlinkSocket(fd, new Struct(address).u32(4), timeoutMs);
    } catch (error) {
      libc.close(fd);
      throw error;
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    libc.close(this.fd);
  }

  /** Sends a change request and waits for its ACK; a kernel error becomes a SyscallError. */
  execute(operation: string, request: MessageBuilder): void {
    this.executeAll([{ operation, request }]);
  }

  /**
   * Sends several change requests in one datagram and waits for every ACK: one system call and
   * one wake-up instead of one per request. The kernel carries them out in order and goes on
   * after one fails, so a batch suits steps whose failure the caller undoes as a whole; the
   * first failure, in request order, is thrown.
   */
  executeAll(steps: readonly NetlinkStep[]): void {
    if (steps.length === 0) return;
    const operation = steps.map((step) => step.operation).join(", ");
    const stepOf = new Map<number, number>();
    const messages = steps.map((step, index) => {
      const seq = this.nextSeq();
      stepOf.set(seq, index);
      return step.request.finish(seq, this.portId, NLM_F_REQUEST | NLM_F_ACK);
    });
    this.sendBytes(operation, concatBytes(messages));
    const failures = new Map<number, SyscallError>();
    let pending = steps.length;
    while (pending > 0) {
      for (const message of this.receive(operation, (seq) => stepOf.has(seq))) {
        if (message.type !== NLMSG_ERROR) continue;
        const index = stepOf.get(message.seq)!;
        const reply = parseErrorReply(message);
        if (reply.errno !== 0) failures.set(index, new SyscallError(steps[index]!.operation, reply.errno, reply.message));
        pending--;
      }
    }
    if (failures.size > 0) throw failures.get(Math.min(...failures.keys()))!;
  }

  /** Sends a get for one object and returns the reply (its payload stays valid). */
  query(operation: string, request: MessageBuilder): NetlinkMessage {
    const seq = this.send(operation, request, NLM_F_REQUEST);
    for (;;) {
      for (const message of this.receive(operation, (replySeq) => replySeq === seq)) {
        if (message.type === NLMSG_ERROR) {
          const reply = parseErrorReply(message);
          if (reply.errno === 0) throw new Error(`${operation}: the kernel acknowledged without a reply`);
          throw new SyscallError(operation, reply.errno, reply.message);
        }
        return message;
      }
    }
  }

  /** Runs a dump to its NLMSG_DONE, retrying when the kernel reports it interrupted. */
  dump(operation: string, request: MessageBuilder): NetlinkMessage[] {
    for (let attempt = 1; ; attempt++) {
      const seq = this.send(operation, request, NLM_F_REQUEST | NLM_F_DUMP);
      const messages: NetlinkMessage[] = [];
      let interrupted = false;
      let done = false;
      while (!done) {
        for (const message of this.receive(operation, (replySeq) => replySeq === seq)) {
          if (message.flags & NLM_F_DUMP_INTR) interrupted = true;
          if (message.type === NLMSG_DONE || message.type === NLMSG_ERROR) {
            const reply = parseErrorReply(message);
            if (reply.errno !== 0) throw new SyscallError(operation, reply.errno, reply.message);
            done = true;
            break;
          }
          messages.push(message);
        }
      }
      if (!interrupted) return messages;
      if (attempt === DUMP_ATTEMPTS) {
        throw new Error(`${operation}: the dump was interrupted by concurrent changes ${DUMP_ATTEMPTS} times`);
      }
    }
  }

  private send(operation: string, request: MessageBuilder, flags: number): number {
    const seq = this.nextSeq();
    this.sendBytes(operation, request.finish(seq, this.portId, flags));
    return seq;
  }

  private nextSeq(): number {
    this.seq = (this.seq + 1) >>> 0 || 1;
    return this.seq;
  }

  private sendBytes(operation: string, bytes: Uint8Array): void {
    if (this.closed) throw new Error(`${operation}: the netlink handle is closed`);
    const sent = check(`${operation}: send`, libc.sendto(this.fd, bytes, bytes.byteLength, 0, KERNEL, SOCKADDR_NL_LEN));
    if (sent !== bytes.byteLength) throw new Error(`${operation}: sent ${sent} of ${bytes.byteLength} bytes`);
  }

  /**
   * The messages of the next datagram that answer this request (`ours` accepts their sequence
   * numbers). Others are replies to an earlier request abandoned after a timeout, and are dropped
   * so they cannot be mistaken for this one's.
   */
  private receive(operation: string, ours: (seq: number) => boolean): NetlinkMessage[] {
    const messages = parseMessages(this.receiveDatagram(operation)).filter((message) => ours(message.seq));
    for (const message of messages) {
      if (message.type === NLMSG_OVERRUN) throw new Error(`${operation}: netlink reported data lost (overrun)`);
    }
    return messages.filter((message) => message.type !== NLMSG_NOOP && message.type !== NLMSG_OVERRUN);
  }

  /** One datagram, copied out of the reusable buffer. Peeks first so none is ever truncated. */
  private receiveDatagram(operation: string): Uint8Array {
    for (;;) {
      const buffer = this.receiveBuffer;
      const size = Number(libc.recvfrom(this.fd, buffer, buffer.byteLength, MSG_PEEK | MSG_TRUNC, null, null));
      if (size < 0) {
        const code = errno();
        if (code === EINTR) continue;
        if (code === EAGAIN) throw new SyscallError(operation, ETIMEDOUT, `no reply from the kernel within ${this.timeoutMs} ms`);
        throw new SyscallError(`${operation}: receive`, code);
      }
      if (size > buffer.byteLength) {
        this.receiveBuffer = new Uint8Array(size);
        continue;
      }
      const received = check(`${operation}: receive`, libc.recvfrom(this.fd, buffer, buffer.byteLength, 0, null, null));
      return buffer.slice(0, received);
    }
  }
}

function setIntOption(fd: number, level: number, option: number, value: number, name: string): void {
  check(`set ${name} on rtnetlink socket`, libc.setsockopt(fd, level, option, Int32Array.of(value), 4));
}
