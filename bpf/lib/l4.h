/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * l4.h - the L4 part of a flow tuple: ports, ICMP ids, TCP flags.
 *
 * ICMP echo is tracked like a port-based protocol: the identifier sits in
 * the "source port" of a request and in the "destination port" of a reply,
 * so that reversing a reply tuple yields the request tuple.
 */
#pragma once

#include "common.h"
#include "csum.h"
#include "ipv4.h"

/* TCP flag bits as they appear in byte 13 of the TCP header. */
#define TCP_FLAG_FIN	0x01
#define TCP_FLAG_SYN	0x02
#define TCP_FLAG_RST	0x04
#define TCP_FLAG_PSH	0x08
#define TCP_FLAG_ACK	0x10
#define TCP_FLAGS_OFF	13

/* ICMP types this datapath interprets. */
#define ICMP_ECHOREPLY_		0
#define ICMP_DEST_UNREACH_	3
#define ICMP_ECHO_		8
#define ICMP_TIME_EXCEEDED_	11
#define ICMP_PARAMETERPROB_	12

#define ICMP_ID_OFF	4	/* echo identifier, from the ICMP header start */
#define ICMP_ERR_INNER	8	/* quoted IP header, from the ICMP header start */

enum {
	L4_OK = 0,		/* ports (or echo id) filled in */
	L4_NO_PORTS = 1,	/* protocol without ports: tuple has 0 ports */
	L4_ICMP_ERROR = 2,	/* ICMP error: tuple lives in the quoted packet */
	L4_FRAGMENT = 3,	/* later fragment: no L4 header at all */
	L4_TRUNCATED = -1,	/* header claimed by the IP header is cut */
};

struct l4_info {
	__be16 sport;
	__be16 dport;
	__u8 tcp_flags;
	__u8 icmp_type;
	__u8 pad[2];
};

/* Can conntrack follow this packet? (Not ICMP errors: they are matched
 * against the connection they quote; not later fragments: no ports.) */
static __always_inline int l4_trackable(int l4res)
{
	return l4res == L4_OK || l4res == L4_NO_PORTS;
}

/* Fill ports/flags for the L4 header of p. */
static __always_inline int l4_parse(struct __sk_buff *skb,
				    const struct ipv4_pkt *p, struct l4_info *l4)
{
	__u8 hdr[14];

	l4->sport = 0;
	l4->dport = 0;
	l4->tcp_flags = 0;
	l4->icmp_type = 0;
	if (!ipv4_has_l4(p))
		return L4_FRAGMENT;

	switch (p->proto) {
	case IPPROTO_TCP:
		if (bpf_skb_load_bytes(skb, p->l4_off, hdr, 14) < 0)
			return L4_TRUNCATED;
		__builtin_memcpy(&l4->sport, &hdr[0], 2);
		__builtin_memcpy(&l4->dport, &hdr[2], 2);
		l4->tcp_flags = hdr[TCP_FLAGS_OFF];
		return L4_OK;
	case IPPROTO_UDP:
	case IPPROTO_SCTP:
		/* Both start with source and destination port. */
		if (bpf_skb_load_bytes(skb, p->l4_off, hdr, 4) < 0)
			return L4_TRUNCATED;
		__builtin_memcpy(&l4->sport, &hdr[0], 2);
		__builtin_memcpy(&l4->dport, &hdr[2], 2);
		return L4_OK;
	case IPPROTO_ICMP:
		if (bpf_skb_load_bytes(skb, p->l4_off, hdr, 8) < 0)
			return L4_TRUNCATED;
		l4->icmp_type = hdr[0];
		switch (hdr[0]) {
		case ICMP_ECHO_:
			__builtin_memcpy(&l4->sport, &hdr[ICMP_ID_OFF], 2);
			return L4_OK;
		case ICMP_ECHOREPLY_:
			__builtin_memcpy(&l4->dport, &hdr[ICMP_ID_OFF], 2);
			return L4_OK;
		case ICMP_DEST_UNREACH_:
		case ICMP_TIME_EXCEEDED_:
		case ICMP_PARAMETERPROB_:
			/* Errors only quote a packet if it is all here. */
			return p->frag == IPV4_FRAG_NONE ? L4_ICMP_ERROR
							 : L4_NO_PORTS;
		default:
			return L4_NO_PORTS;
		}
	default:
		return L4_NO_PORTS;
	}
}

/*
 * The packet quoted inside an ICMP error, in its own orientation (as it was
 * sent). For TCP/UDP the ports are the first 4 bytes of its L4 header; for a
 * quoted echo request/reply the id is placed as l4_parse() would place it.
 */
struct icmp_inner {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 pad[3];
	__u32 ip_off;		/* offset of the quoted IP header */
	__u32 l4_off;		/* offset of the quoted L4 header */
};

static __always_inline int icmp_inner_parse(struct __sk_buff *skb,
					    const struct ipv4_pkt *p,
					    struct icmp_inner *in)
{
	struct iphdr ip;
	__u8 l4[8];

	in->ip_off = p->l4_off + ICMP_ERR_INNER;
	if (bpf_skb_load_bytes(skb, in->ip_off, &ip, sizeof(ip)) < 0)
		return -1;
	if (ip.version != 4 || ip.ihl < 5)
		return -1;
	/* A quoted later fragment has no ports to match. */
	if (bpf_ntohs(ip.frag_off) & IP_OFFSET)
		return -1;
	in->l4_off = in->ip_off + (__u32)ip.ihl * 4;
	if (bpf_skb_load_bytes(skb, in->l4_off, l4, sizeof(l4)) < 0)
		return -1;

	in->saddr = ip.saddr;
	in->daddr = ip.daddr;
	in->proto = ip.protocol;
	in->sport = 0;
	in->dport = 0;
	switch (ip.protocol) {
	case IPPROTO_TCP:
	case IPPROTO_UDP:
		__builtin_memcpy(&in->sport, &l4[0], 2);
		__builtin_memcpy(&in->dport, &l4[2], 2);
		return 0;
	case IPPROTO_ICMP:
		if (l4[0] == ICMP_ECHO_)
			__builtin_memcpy(&in->sport, &l4[ICMP_ID_OFF], 2);
		else if (l4[0] == ICMP_ECHOREPLY_)
			__builtin_memcpy(&in->dport, &l4[ICMP_ID_OFF], 2);
		else
			return -1;
		return 0;
	default:
		return -1;
	}
}

/* Offset of the quoted packet's source (dir 0) or destination (dir 1)
 * "port" field: a real port for TCP/UDP, the echo id for ICMP. */
static __always_inline __u32 icmp_inner_port_off(const struct icmp_inner *in,
						 int dst)
{
	if (in->proto == IPPROTO_ICMP)
		return in->l4_off + ICMP_ID_OFF;
	return in->l4_off + (dst ? 2 : 0);
}
