/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * common.h - types, helpers and constants shared by every datapath program.
 *
 * Conventions used throughout bpf/:
 *  - Every helper in lib/ is `static __always_inline`: each program is
 *    verified as one straight function, no BPF-to-BPF calls.
 *  - Packet bytes are read with bpf_skb_load_bytes() into stack copies and
 *    written with bpf_skb_store_bytes() + the csum helpers.  Both are
 *    bounds-checked by the kernel against the real skb length (linear or
 *    paged), so no program ever dereferences skb->data directly and no
 *    packet pointer can go stale after a write.
 *  - Offsets are plain __u32 values relative to skb->data (the Ethernet
 *    header, since all attach points are tc on Ethernet-like devices).
 */
#pragma once

#include <linux/types.h>
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif

#define likely(x)	__builtin_expect(!!(x), 1)
#define unlikely(x)	__builtin_expect(!!(x), 0)

/* bpf_helpers.h defines offsetof() as a pointer cast, which is not a
 * constant expression; use the builtin so layouts can be asserted. */
#undef offsetof
#define offsetof(t, m)	__builtin_offsetof(t, m)

/* Compile-time layout checks: the control plane encodes these structs by
 * hand, so any accidental change of size/offset must fail the build. */
#define LAYOUT_ASSERT(cond, msg)	_Static_assert(cond, msg)

#define NSEC_PER_SEC	1000000000ULL

/* Identities reserved by upstream (WORLD: addresses no ipcache prefix holds). */
#define IDENTITY_UNKNOWN	0
#define IDENTITY_HOST		1
#define IDENTITY_WORLD		2
#define IDENTITY_REMOTE_NODE	6

/* Traffic directions, as in upstream's metrics and policy maps. */
enum {
	DIR_INGRESS = 1,	/* towards an endpoint / into the node */
	DIR_EGRESS = 2,		/* away from an endpoint / out of the node */
};

/* Source files, recorded in drop events so a drop can be traced to code. */
enum {
	SRC_FILE_LXC = 1,
	SRC_FILE_HOST = 2,
	SRC_FILE_OVERLAY = 3,
};

/* Generic helpers --------------------------------------------------------- */

/* CLOCK_MONOTONIC at tick resolution, for conntrack and NAT deadlines and
 * ages (second granularity): the coarse clock reads the last tick instead
 * of the clocksource, which under a hypervisor is a measurable share of a
 * per-packet program's run time. Never later than bpf_ktime_get_ns(). */
static __always_inline __u64 ktime_now(void)
{
	return bpf_ktime_get_coarse_ns();
}

/* True if addr is inside net/mask (all network byte order). A zero mask
 * means "no network configured" and never matches. */
static __always_inline int ipv4_in_net(__be32 addr, __be32 net, __be32 mask)
{
	return mask != 0 && (addr & mask) == (net & mask);
}
