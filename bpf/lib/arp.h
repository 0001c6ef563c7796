/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * arp.h - answer a pod's ARP requests with the host-side veth MAC.
 *
 * A pod has a /32 and reaches everything through its gateway, so the only
 * ARP it needs answered is "who has GW"; any target other than its own
 * address gets the host-side veth MAC (node_mac), which is where the
 * datapath wants every frame to go.
 */
#pragma once

#include "common.h"
#include "eth.h"

/* From linux/if_arp.h, which drags in libc headers. */
#define ARPHRD_ETHER	1
#define ARPOP_REQUEST	1
#define ARPOP_REPLY	2

/* Ethernet/IPv4 ARP body (RFC 826), without the fixed header's padding. */
struct arp_eth4 {
	__be16 hrd;
	__be16 pro;
	__u8 hln;
	__u8 pln;
	__be16 op;
	__u8 sha[ETH_ALEN_];
	__u8 sip[4];		/* unaligned in the packet: kept as bytes */
	__u8 tha[ETH_ALEN_];
	__u8 tip[4];
} __attribute__((packed));
LAYOUT_ASSERT(sizeof(struct arp_eth4) == 28, "arp body size");

struct arp_frame {
	struct ethhdr eth;
	struct arp_eth4 arp;
} __attribute__((packed));
LAYOUT_ASSERT(sizeof(struct arp_frame) == 42, "arp frame size");

enum {
	ARP_REQUEST_OK = 0,	/* a request we may answer */
	ARP_NOT_OURS = 1,	/* not an Ethernet/IPv4 request: pass */
	ARP_SELF = 2,		/* probe/announcement for the sender itself */
};

static __always_inline int arp_load_request(struct __sk_buff *skb,
					    struct arp_frame *f,
					    __be32 *sip, __be32 *tip)
{
	if (bpf_skb_load_bytes(skb, 0, f, sizeof(*f)) < 0)
		return ARP_NOT_OURS;
	if (f->arp.hrd != bpf_htons(ARPHRD_ETHER) ||
	    f->arp.pro != bpf_htons(ETH_P_IP) ||
	    f->arp.hln != ETH_ALEN_ || f->arp.pln != 4 ||
	    f->arp.op != bpf_htons(ARPOP_REQUEST))
		return ARP_NOT_OURS;
	__builtin_memcpy(sip, f->arp.sip, 4);
	__builtin_memcpy(tip, f->arp.tip, 4);
	if (*sip == 0 || *sip == *tip)
		return ARP_SELF;
	return ARP_REQUEST_OK;
}

/* Turn the request in `f` into a reply from `mac` and write it back over
 * the first 42 bytes of the frame (any Ethernet padding is kept). */
static __always_inline int arp_write_reply(struct __sk_buff *skb,
					   struct arp_frame *f, const __u8 *mac)
{
	__u8 ip[4];

	__builtin_memcpy(f->eth.h_dest, f->eth.h_source, ETH_ALEN_);
	__builtin_memcpy(f->eth.h_source, mac, ETH_ALEN_);
	f->arp.op = bpf_htons(ARPOP_REPLY);
	__builtin_memcpy(f->arp.tha, f->arp.sha, ETH_ALEN_);
	__builtin_memcpy(f->arp.sha, mac, ETH_ALEN_);
	__builtin_memcpy(ip, f->arp.sip, 4);
	__builtin_memcpy(f->arp.sip, f->arp.tip, 4);
	__builtin_memcpy(f->arp.tip, ip, 4);
	return bpf_skb_store_bytes(skb, 0, f, sizeof(*f), 0);
}
