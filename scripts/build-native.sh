#!/usr/bin/env bash
# Builds what the executable embeds from C: the self-contained libbpf shared object and the
# BPF objects (bpf/*.c for the product, tests/bpf/*.c for the tests). Outputs go under build/.
set -euo pipefail
cd "$(dirname "$0")/.."

LIBDIR=/usr/lib/x86_64-linux-gnu
OUT=build
mkdir -p "$OUT/libbpf" "$OUT/bpf" "$OUT/test-bpf"

# libbpf + libelf + zlib, static, in one shared object that needs only libc.
so="$OUT/libbpf/libbpf-embed.so"
if [[ ! -f $so || native/libbpf/shim.c -nt $so || $LIBDIR/libbpf.a -nt $so ]]; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  cp "$LIBDIR/libelf.a" "$work/libelf.a"
  ar d "$work/libelf.a" elf_error.o # replaced by the shim (local-exec TLS)
  gcc -fPIC -O2 -Wall -c native/libbpf/shim.c -o "$work/shim.o"
  gcc -shared -o "$so.tmp" "$work/shim.o" \
    -Wl,--whole-archive "$LIBDIR/libbpf.a" -Wl,--no-whole-archive \
    "$work/libelf.a" "$LIBDIR/libz.a" \
    -Wl,-Bsymbolic -Wl,--version-script=native/libbpf/exports.map \
    -Wl,-soname,libbpf-embed.so -Wl,--gc-sections -s
  mv "$so.tmp" "$so"
fi

CLANG=${CLANG:-clang}
BPF_CFLAGS=(-target bpf -O2 -g -Wall -Werror -Wno-unused-function
  -I bpf/lib -I bpf -I /usr/include/x86_64-linux-gnu -D__TARGET_ARCH_x86)

compile_dir() { # src_dir out_dir
  local src=$1 out=$2 c obj
  shopt -s nullglob
  for c in "$src"/*.c; do
    obj="$out/$(basename "${c%.c}").o"
    if [[ ! -f $obj || $c -nt $obj || -n $(find bpf/lib "$src" -name '*.h' -newer "$obj" -print -quit 2>/dev/null) ]]; then
      "$CLANG" "${BPF_CFLAGS[@]}" -c "$c" -o "$obj"
    fi
  done
}
compile_dir bpf "$OUT/bpf"
compile_dir tests/bpf "$OUT/test-bpf"
