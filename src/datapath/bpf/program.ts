/**
 * Running a loaded program on a crafted input without attaching it (BPF_PROG_TEST_RUN): the
 * kernel builds a context (for tc, an skb) around the bytes, runs the program and reports its
 * return value and the possibly rewritten packet.
 */
import { bpf_test_run_opts } from "./abi.ts";
import { check } from "./error.ts";
import { libbpf } from "./libbpf.ts";
import { address, holding } from "./memory.ts";
import { programFd, programLabel, type BpfProgram } from "./object.ts";

export interface TestRunInput {
  /** The packet, from the Ethernet header on for tc programs (at least 14 bytes). */
  data: Uint8Array;
  /** Runs the program this many times; durationNs is the average. */
  repeat?: number;
  /** A context to start from (for tc, a struct __sk_buff: mark, priority, ifindex, ...). */
  ctxIn?: Uint8Array;
}

export interface TestRunResult {
  /** The program's return value (for tc: TC_ACT_OK 0, TC_ACT_SHOT 2, TC_ACT_REDIRECT 7, ...). */
  retval: number;
  durationNs: number;
  /** The packet as the program left it. */
  data: Uint8Array;
  /** The context as the program left it, when ctxIn was given. */
  ctx?: Uint8Array;
}

/** Room for programs that grow the packet (encapsulation adds headers). */
const packetHeadroom = 512;

export function testRun(program: BpfProgram | number, input: TestRunInput): TestRunResult {
  const fd = programFd(program);
  const dataOut = new Uint8Array(input.data.length + packetHeadroom);
  const ctxOut = input.ctxIn ? new Uint8Array(input.ctxIn.length) : null;
  const opts = bpf_test_run_opts.encode({
    sz: BigInt(bpf_test_run_opts.size),
    data_in: address(input.data),
    data_out: address(dataOut),
    data_size_in: input.data.length,
    data_size_out: dataOut.length,
    ctx_in: address(input.ctxIn),
    ctx_out: address(ctxOut),
    ctx_size_in: input.ctxIn?.length ?? 0,
    ctx_size_out: ctxOut?.length ?? 0,
    retval: 0,
    repeat: input.repeat ?? 1,
    duration: 0,
    flags: 0,
    cpu: 0,
    batch_size: 0,
  });
  holding([input.data, dataOut, input.ctxIn, ctxOut], () =>
    check(`test run of program ${programLabel(program)}`, () => libbpf().bpf_prog_test_run_opts(fd, opts)),
  );
  const result = bpf_test_run_opts.decode(opts);
  return {
    retval: result.retval,
    durationNs: result.duration,
    data: dataOut.slice(0, result.data_size_out),
    ...(ctxOut ? { ctx: ctxOut.slice(0, result.ctx_size_out) } : {}),
  };
}
