/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* eth.h - Ethernet header access. */
#pragma once

#include "common.h"

#define ETH_ALEN_	6

/* Read the EtherType; returns 0 on a runt frame. */
static __always_inline __be16 eth_load_proto(struct __sk_buff *skb)
{
	__be16 proto;

	if (bpf_skb_load_bytes(skb, offsetof(struct ethhdr, h_proto),
			       &proto, sizeof(proto)) < 0)
		return 0;
	return proto;
}

/* Rewrite destination and source MAC in one store. */
static __always_inline int eth_store_macs(struct __sk_buff *skb,
					  const __u8 *dst, const __u8 *src)
{
	__u8 macs[2 * ETH_ALEN_];

	__builtin_memcpy(macs, dst, ETH_ALEN_);
	__builtin_memcpy(macs + ETH_ALEN_, src, ETH_ALEN_);
	return bpf_skb_store_bytes(skb, 0, macs, sizeof(macs), 0);
}
