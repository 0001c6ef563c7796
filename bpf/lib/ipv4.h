/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * ipv4.h - IPv4 header parsing and in-place rewrites.
 *
 * ipv4_parse() validates the header once and fills a compact descriptor the
 * rest of the datapath works from. IP options (ihl > 5) are honoured through
 * l4_off; fragments are classified so later stages never read an L4 header
 * from a non-first fragment.
 */
#pragma once

#include <linux/ip.h>
#include "common.h"
#include "csum.h"

#define IP_MF		0x2000	/* more fragments */
#define IP_OFFSET	0x1fff	/* fragment offset, 8-byte units */

#define IPV4_L3_OFF	ETH_HLEN
#define IPV4_CSUM_OFF	(IPV4_L3_OFF + offsetof(struct iphdr, check))
#define IPV4_SADDR_OFF	(IPV4_L3_OFF + offsetof(struct iphdr, saddr))
#define IPV4_DADDR_OFF	(IPV4_L3_OFF + offsetof(struct iphdr, daddr))
#define IPV4_TTL_OFF	(IPV4_L3_OFF + offsetof(struct iphdr, ttl))

enum {
	IPV4_FRAG_NONE = 0,	/* unfragmented datagram */
	IPV4_FRAG_FIRST = 1,	/* offset 0, MF set: carries the L4 header */
	IPV4_FRAG_LATER = 2,	/* offset > 0: no L4 header */
};

struct ipv4_pkt {
	__be32 saddr;
	__be32 daddr;
	__be16 id;
	__u8 proto;
	__u8 ttl;
	__u8 frag;		/* IPV4_FRAG_* */
	__u8 pad[3];
	__u32 l4_off;		/* offset of the L4 header from skb->data */
	__u32 tot_len;		/* IP total length */
};

/* Parse the IPv4 header at IPV4_L3_OFF. Returns 0 on success, -1 if the
 * header is truncated or malformed (bad version, ihl < 5, total length
 * shorter than the header or longer than the frame). */
static __always_inline int ipv4_parse(struct __sk_buff *skb, struct ipv4_pkt *p)
{
	struct iphdr ip;
	__u32 hlen, frag_off;

	if (bpf_skb_load_bytes(skb, IPV4_L3_OFF, &ip, sizeof(ip)) < 0)
		return -1;
	if (ip.version != 4 || ip.ihl < 5)
		return -1;
	hlen = (__u32)ip.ihl * 4;
	p->tot_len = bpf_ntohs(ip.tot_len);
	/* BIG TCP GSO packets (> 64 KiB) carry tot_len 0. */
	if (p->tot_len == 0 && skb->gso_size)
		p->tot_len = skb->len - IPV4_L3_OFF;
	if (p->tot_len < hlen || p->tot_len > skb->len - IPV4_L3_OFF)
		return -1;

	p->saddr = ip.saddr;
	p->daddr = ip.daddr;
	p->id = ip.id;
	p->proto = ip.protocol;
	p->ttl = ip.ttl;
	p->l4_off = IPV4_L3_OFF + hlen;

	frag_off = bpf_ntohs(ip.frag_off);
	if (frag_off & IP_OFFSET)
		p->frag = IPV4_FRAG_LATER;
	else if (frag_off & IP_MF)
		p->frag = IPV4_FRAG_FIRST;
	else
		p->frag = IPV4_FRAG_NONE;
	return 0;
}

static __always_inline int ipv4_has_l4(const struct ipv4_pkt *p)
{
	return p->frag != IPV4_FRAG_LATER;
}

/* Decrement the TTL and patch the header checksum. The 16-bit word that
 * holds TTL also holds the protocol, so the csum update covers both bytes. */
static __always_inline int ipv4_dec_ttl(struct __sk_buff *skb,
					const struct ipv4_pkt *p)
{
	__u8 ttl = p->ttl - 1;
	__be16 old_word = bpf_htons(((__u16)p->ttl << 8) | p->proto);
	__be16 new_word = bpf_htons(((__u16)ttl << 8) | p->proto);

	if (bpf_skb_store_bytes(skb, IPV4_TTL_OFF, &ttl, 1, 0) < 0)
		return -1;
	return bpf_l3_csum_replace(skb, IPV4_CSUM_OFF, old_word, new_word, 2);
}
