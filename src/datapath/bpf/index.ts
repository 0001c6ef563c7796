/** The libbpf layer: BPF objects, typed maps, program test runs, attachments, ring buffers. */
export {
  array,
  be16,
  be32,
  bytes,
  CodecError,
  i32,
  ipv4,
  mac,
  pad,
  struct,
  u16,
  u32,
  u64,
  u8,
  PerCpuCodec,
  type Codec,
  type Infer,
  type StructValue,
} from "./codec.ts";
export { perCpu, possibleCpus } from "./percpu.ts";
export { BpfError } from "./error.ts";
export { setBpfLogger, type BpfLogger, type BpfLogLevel } from "./log.ts";
export { BpfObject, BpfMapHandle, BpfProgram, type BpfObjectOptions } from "./object.ts";
export { BpfMap, type UpdateFlag } from "./map.ts";
export { mapInfo, programInfo, linkInfo, type MapInfo, type ProgramInfo, type LinkInfo } from "./info.ts";
export { testRun, type TestRunInput, type TestRunResult } from "./program.ts";
export { BpfLink } from "./link.ts";
export { attachTc, TcxAttachment, ClsactAttachment, type TcAttachment, type TcAttachOptions, type TcMode } from "./tc.ts";
export { listTcx, tcxSupported, type TcDirection, type TcxProgram } from "./tcx.ts";
export { attachCgroup, type CgroupAttachType } from "./cgroup.ts";
export { RingBufferReader, type RingBufferOptions, type RingBufferStats } from "./ringbuf.ts";
export { LibbpfRingBufferReader } from "./ringbuf-libbpf.ts";
