/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * csum.h - checksum field locations and incremental updates.
 *
 * Address rewrites touch the IPv4 header checksum and, for TCP/UDP, the L4
 * checksum through the pseudo header (BPF_F_PSEUDO_HDR). Port / ICMP id
 * rewrites touch only the L4 checksum. UDP may carry a zero ("none")
 * checksum, which BPF_F_MARK_MANGLED_0 preserves. ICMP has no pseudo header.
 * The kernel helpers also keep skb->csum right for CHECKSUM_COMPLETE and
 * only patch the pseudo-header sum for CHECKSUM_PARTIAL (GSO/veth) packets.
 */
#pragma once

#include <linux/in.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include "common.h"

struct csum_loc {
	__u32 off;	/* absolute offset of the L4 checksum field, 0 = none */
	__u32 flags;	/* extra flags for bpf_l4_csum_replace() */
};

/* Where the L4 checksum of `proto` lives for an L4 header at l4_off. */
static __always_inline void csum_l4_loc(__u8 proto, __u32 l4_off,
					struct csum_loc *c)
{
	switch (proto) {
	case IPPROTO_TCP:
		c->off = l4_off + offsetof(struct tcphdr, check);
		c->flags = 0;
		break;
	case IPPROTO_UDP:
		c->off = l4_off + offsetof(struct udphdr, check);
		c->flags = BPF_F_MARK_MANGLED_0;
		break;
	case IPPROTO_ICMP:
		c->off = l4_off + 2;	/* ICMP header: type, code, checksum */
		c->flags = 0;
		break;
	default:
		c->off = 0;
		c->flags = 0;
	}
}

/* An address in the IP header changed: fix the L4 pseudo-header sum.
 * ICMP has no pseudo header, so nothing to do for it. */
static __always_inline int csum_l4_addr(struct __sk_buff *skb,
					const struct csum_loc *c, __u8 proto,
					__be32 from, __be32 to)
{
	if (!c->off || proto == IPPROTO_ICMP)
		return 0;
	return bpf_l4_csum_replace(skb, c->off, from, to,
				   c->flags | BPF_F_PSEUDO_HDR | sizeof(to));
}

/* A 16-bit field inside the L4 payload/header changed (port, ICMP id). */
static __always_inline int csum_l4_word(struct __sk_buff *skb,
					const struct csum_loc *c,
					__be16 from, __be16 to)
{
	if (!c->off)
		return 0;
	return bpf_l4_csum_replace(skb, c->off, from, to,
				   c->flags | sizeof(to));
}

/* Fold a 32-bit one's complement sum (bpf_csum_diff's result) into the
 * 16-bit checksum field value. */
static __always_inline __sum16 csum_fold(__s64 sum)
{
	__u32 s = (__u32)sum;

	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__sum16)~s;
}
