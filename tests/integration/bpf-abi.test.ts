/**
 * The C structs in src/datapath/bpf/abi.ts must match libbpf's and the kernel's headers byte for
 * byte: compile a program that prints sizeof/offsetof for each and compare with our codecs.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as abi from "../../src/datapath/bpf/abi.ts";
import { PadCodec, StructCodec } from "../../src/datapath/bpf/codec.ts";

const compiler = Bun.which("gcc") ?? Bun.which("cc");

/** Structs of which we describe only the leading part (the kernel fills as much as we ask for). */
const prefixOnly = new Set(["bpf_prog_info", "bpf_link_info"]);
/** Fields newer than the installed kernel headers (6.1): checked against a sibling union member. */
const newerThanHeaders: Record<string, string> = { "bpf_link_info.tcx": "netns" };

const structs = Object.entries(abi).flatMap(([name, value]) =>
  value instanceof StructCodec ? [[name, value] as const] : [],
);

describe.skipIf(!compiler)("libbpf and kernel struct layouts", () => {
  const dir = mkdtempSync(join(tmpdir(), "tbpf-abi-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const lines: string[] = [];
  for (const [name, codec] of structs) {
    if (!prefixOnly.has(name)) lines.push(`printf("${name} %zu\\n", sizeof(struct ${name}));`);
    for (const field of codec.fields) {
      if (field.codec instanceof PadCodec) continue;
      const member = newerThanHeaders[`${name}.${field.name}`] ?? field.name;
      lines.push(`printf("${name}.${field.name} %zu\\n", offsetof(struct ${name}, ${member}));`);
    }
  }
  const source = `#include <stddef.h>
#include <stdio.h>
#include <linux/bpf.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
int main(void) {
${lines.join("\n")}
return 0;
}
`;

  const measured = new Map<string, number>();
  test("the layout probe compiles and runs", () => {
    writeFileSync(join(dir, "layout.c"), source);
    const build = Bun.spawnSync([compiler!, "-o", join(dir, "layout"), join(dir, "layout.c")]);
    expect(build.stderr.toString()).toBe("");
    expect(build.exitCode).toBe(0);
    const run = Bun.spawnSync([join(dir, "layout")]);
    expect(run.exitCode).toBe(0);
    for (const line of run.stdout.toString().trim().split("\n")) {
      const [key, value] = line.split(" ");
      measured.set(key!, Number(value));
    }
  });

  for (const [name, codec] of structs) {
    test(`struct ${name}`, () => {
      const ours = new Map<string, number | undefined>();
      const theirs = new Map<string, number | undefined>();
      if (!prefixOnly.has(name)) {
        ours.set("sizeof", codec.size);
        theirs.set("sizeof", measured.get(name));
      }
      for (const field of codec.fields) {
        if (field.codec instanceof PadCodec) continue;
        ours.set(field.name, field.offset);
        theirs.set(field.name, measured.get(`${name}.${field.name}`));
      }
      expect(Object.fromEntries(ours)).toEqual(Object.fromEntries(theirs));
    });
  }
});
