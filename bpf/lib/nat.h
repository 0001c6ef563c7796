/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * nat.h - IPv4 masquerade (SNAT to the node address) on the native device.
 *
 * One connection owns two entries in cilium_snat_v4_external:
 *
 *   EGRESS  {pod, remote, pod_port, remote_port, proto}  -> {node, nat_port}
 *   INGRESS {remote, node, remote_port, nat_port, proto} -> {pod, pod_port}
 *
 * The INGRESS key is exactly the tuple of a reply as it arrives, so reverse
 * translation is one lookup. Ports are endpoint-dependent: nat_port only has
 * to be unique per {remote, remote_port, proto}, and uniqueness is enforced
 * by inserting the INGRESS entry with BPF_NOEXIST. ICMP echo is handled the
 * same way with the echo identifier as the port (l4.h explains placement).
 *
 * Fragments: a later fragment carries no L4 header. Outbound, only its
 * source address changes (the first fragment carries the whole datagram's
 * L4 checksum, which the port/address update fixes). Inbound, the first
 * fragment of a translated reply records {remote, node, id, proto} -> pod in
 * cilium_snat_v4_frags so later fragments can be steered; a later fragment
 * seen before its first one is left to the stack.
 *
 * Replies of connections opened from outside towards a pod (possible when
 * the pod CIDR is routed to the node) are never masqueraded: before a new
 * mapping is made, conntrack is asked whether the packet answers a
 * connection tracked in the pod's ingress view.
 *
 * ICMP errors quoting a translated packet are translated too: the outer
 * address, the quoted address (and quoted IP checksum) and the quoted port.
 * The quoted IP header's checksum change exactly offsets its address change
 * inside the ICMP payload, so only the quoted port changes the ICMP
 * checksum.
 */
#pragma once

#include "maps.h"
#include "config.h"
#include "ipv4.h"
#include "l4.h"
#include "csum.h"
#include "drop.h"
#include "trace.h"
#include "conntrack.h"

enum {
	NAT_DIR_EGRESS = 0,
	NAT_DIR_INGRESS = 1,
};

#define SNAT_COLLISION_RETRIES	32

/* Result of a translation attempt (>0 values are drop reasons). */
enum {
	NAT_PUNT = -1,		/* not ours: leave the packet untouched */
	NAT_DONE = 0,		/* translated */
};

static __always_inline void snat_port_range(const struct node_config *cfg,
					    __u16 *min, __u16 *max)
{
	*min = cfg->snat_port_min ? cfg->snat_port_min : SNAT_PORT_MIN_DEFAULT;
	*max = cfg->snat_port_max ? cfg->snat_port_max : SNAT_PORT_MAX_DEFAULT;
	if (*max < *min)
		*max = *min;
}

/* Offset of the "port" to rewrite: TCP/UDP source (0) or destination (1)
 * port, or the ICMP echo identifier. */
static __always_inline __u32 nat_port_off(__u8 proto, __u32 l4_off, int dst)
{
	if (proto == IPPROTO_ICMP)
		return l4_off + ICMP_ID_OFF;
	return l4_off + (dst ? 2 : 0);
}

static __always_inline void nat_touch(struct ipv4_nat_entry *e, __u64 now)
{
	if (now > e->last_seen + NSEC_PER_SEC)
		e->last_seen = now;
}

/* Rewrite an IPv4 address at addr_off (outer header), fixing the IP header
 * checksum and the L4 pseudo-header sum. */
static __always_inline int nat_rewrite_addr(struct __sk_buff *skb,
					    const struct ipv4_pkt *p,
					    const struct csum_loc *csum,
					    __u32 addr_off, __be32 from,
					    __be32 to)
{
	if (bpf_skb_store_bytes(skb, addr_off, &to, sizeof(to), 0) < 0)
		return DROP_WRITE_ERROR;
	if (bpf_l3_csum_replace(skb, IPV4_CSUM_OFF, from, to, sizeof(to)) < 0)
		return DROP_CSUM_L3;
	if (ipv4_has_l4(p) && csum_l4_addr(skb, csum, p->proto, from, to) < 0)
		return DROP_CSUM_L4;
	return NAT_DONE;
}

/* Rewrite a 16-bit port / echo id, fixing the L4 checksum. */
static __always_inline int nat_rewrite_port(struct __sk_buff *skb,
					    const struct csum_loc *csum,
					    __u32 off, __be16 from, __be16 to)
{
	if (from == to)
		return NAT_DONE;
	if (bpf_skb_store_bytes(skb, off, &to, sizeof(to), 0) < 0)
		return DROP_WRITE_ERROR;
	if (csum_l4_word(skb, csum, from, to) < 0)
		return DROP_CSUM_L4;
	return NAT_DONE;
}

/*
 * Inside an ICMP error, rewrite the quoted packet's source (dst == 0) or
 * destination (dst == 1) address and port, plus the outer address at
 * outer_off (which the ICMP checksum does not cover).
 */
static __always_inline int nat_rewrite_icmp_error(struct __sk_buff *skb,
						  const struct ipv4_pkt *p,
						  const struct icmp_inner *in,
						  int dst, __u32 outer_off,
						  __be32 outer_from,
						  __be32 to_addr,
						  __be16 to_port)
{
	struct csum_loc icmp_csum;
	__be32 from_addr = dst ? in->daddr : in->saddr;
	__be16 from_port = dst ? in->dport : in->sport;
	__u32 addr_off = in->ip_off + (dst ? offsetof(struct iphdr, daddr)
					   : offsetof(struct iphdr, saddr));
	int ret;

	csum_l4_loc(IPPROTO_ICMP, p->l4_off, &icmp_csum);

	/* Quoted address + quoted header checksum: net zero for ICMP csum. */
	if (bpf_skb_store_bytes(skb, addr_off, &to_addr, 4, 0) < 0)
		return DROP_WRITE_ERROR;
	if (bpf_l3_csum_replace(skb, in->ip_off + offsetof(struct iphdr, check),
				from_addr, to_addr, 4) < 0)
		return DROP_CSUM_L3;

	ret = nat_rewrite_port(skb, &icmp_csum, icmp_inner_port_off(in, dst),
			       from_port, to_port);
	if (ret != NAT_DONE)
		return ret;

	/* Outer address: IP header checksum only (ICMP has no pseudo hdr). */
	return nat_rewrite_addr(skb, p, &icmp_csum, outer_off, outer_from,
				to_addr);
}

/* Is this outbound packet a reply of a connection opened towards the pod? */
static __always_inline int snat_v4_is_inbound_reply(const struct ipv4_nat_tuple *t)
{
	struct ct4_key key = {
		.saddr = t->daddr, .daddr = t->saddr,
		.sport = t->dport, .dport = t->sport,
		.proto = t->proto, .flags = CT_KEY_F_IN,
	};
	struct ct_entry *e = bpf_map_lookup_elem(&cilium_ct4_global, &key);

	return e && e->expires > ktime_now();
}

/*
 * Find or create the mapping for an outbound tuple. On success *out holds
 * {node address, nat port} and *created tells whether it is new. Returns
 * NAT_PUNT for replies of inbound connections, which keep their address.
 */
static __always_inline int snat_v4_get_mapping(const struct node_config *cfg,
					       const struct ipv4_nat_tuple *otuple,
					       struct ipv4_nat_entry *out,
					       int *created)
{
	struct ipv4_nat_tuple rtuple = {
		.saddr = otuple->daddr,
		.daddr = cfg->node_ip4,
		.sport = otuple->dport,
		.proto = otuple->proto,
		.dir = NAT_DIR_INGRESS,
	};
	struct ipv4_nat_entry rentry = {}, oentry = {}, *e;
	__u64 now = ktime_now();
	__u16 pmin, pmax, port, i;
	__u32 range;

	*created = 0;
	e = bpf_map_lookup_elem(&cilium_snat_v4_external, otuple);
	if (e && e->to_addr == cfg->node_ip4) {
		nat_touch(e, now);
		*out = *e;
		/* The reverse entry may have been evicted by the LRU: restore
		 * it, or re-allocate if its port was taken meanwhile. */
		rtuple.dport = e->to_port;
		if (bpf_map_lookup_elem(&cilium_snat_v4_external, &rtuple))
			return NAT_DONE;
		rentry.to_addr = otuple->saddr;
		rentry.to_port = otuple->sport;
		rentry.created = now;
		rentry.last_seen = now;
		if (!bpf_map_update_elem(&cilium_snat_v4_external, &rtuple,
					 &rentry, BPF_NOEXIST))
			return NAT_DONE;
	}
	if (e)
		bpf_map_delete_elem(&cilium_snat_v4_external, otuple);
	else if (snat_v4_is_inbound_reply(otuple))
		return NAT_PUNT;

	snat_port_range(cfg, &pmin, &pmax);
	range = (__u32)pmax - pmin + 1;
	port = bpf_ntohs(otuple->sport);
	if (port < pmin || port > pmax)
		port = pmin + bpf_get_prandom_u32() % range;

	rentry.to_addr = otuple->saddr;
	rentry.to_port = otuple->sport;
	rentry.created = now;
	rentry.last_seen = now;
	for (i = 0; i < SNAT_COLLISION_RETRIES; i++) {
		rtuple.dport = bpf_htons(port);
		if (!bpf_map_update_elem(&cilium_snat_v4_external, &rtuple,
					 &rentry, BPF_NOEXIST))
			goto allocated;
		port = pmin + bpf_get_prandom_u32() % range;
	}
	return DROP_NAT_NO_MAPPING;

allocated:
	oentry.to_addr = cfg->node_ip4;
	oentry.to_port = rtuple.dport;
	oentry.created = now;
	oentry.last_seen = now;
	if (bpf_map_update_elem(&cilium_snat_v4_external, otuple, &oentry,
				BPF_NOEXIST)) {
		/* Another CPU mapped this flow first: use its mapping. */
		bpf_map_delete_elem(&cilium_snat_v4_external, &rtuple);
		e = bpf_map_lookup_elem(&cilium_snat_v4_external, otuple);
		if (!e)
			return DROP_NAT_NO_MAPPING;
		*out = *e;
		return NAT_DONE;
	}
	*out = oentry;
	*created = 1;
	return NAT_DONE;
}

/* The mapping of the packet an ICMP error quotes: its tuple reversed,
 * looked up in direction dir. */
static __always_inline struct ipv4_nat_entry *
snat_v4_lookup_quoted(const struct icmp_inner *in, __u8 dir)
{
	struct ipv4_nat_tuple t = {
		.saddr = in->daddr, .daddr = in->saddr,
		.sport = in->dport, .dport = in->sport,
		.proto = in->proto, .dir = dir,
	};

	return bpf_map_lookup_elem(&cilium_snat_v4_external, &t);
}

/* ICMP error from a pod about a packet it received through reverse NAT:
 * the quoted packet is {remote -> pod}; its mapping is the EGRESS entry of
 * the reversed tuple. */
static __always_inline int snat_v4_egress_icmp_error(struct __sk_buff *skb,
						     const struct node_config *cfg,
						     const struct ipv4_pkt *p)
{
	struct icmp_inner in;
	struct ipv4_nat_entry *e;

	if (icmp_inner_parse(skb, p, &in) < 0 || in.daddr != p->saddr)
		return DROP_NAT_UNSUPP_PROTO;
	e = snat_v4_lookup_quoted(&in, NAT_DIR_EGRESS);
	if (!e)
		return DROP_NAT_NO_MAPPING;
	return nat_rewrite_icmp_error(skb, p, &in, 1, IPV4_SADDR_OFF,
				      p->saddr, e->to_addr, e->to_port);
}

/*
 * Masquerade one outbound packet from a pod. Returns NAT_DONE, NAT_PUNT
 * (leave untouched) or a drop reason; *mon gets TRACE_MON_NEW when a
 * mapping was created.
 */
static __always_inline int snat_v4_egress(struct __sk_buff *skb,
					  const struct node_config *cfg,
					  const struct ipv4_pkt *p,
					  const struct l4_info *l4, int l4res,
					  __u8 *mon)
{
	struct ipv4_nat_tuple t = {
		.saddr = p->saddr, .daddr = p->daddr,
		.sport = l4->sport, .dport = l4->dport,
		.proto = p->proto, .dir = NAT_DIR_EGRESS,
	};
	struct ipv4_nat_entry m;
	struct csum_loc csum;
	int ret, created;

	*mon = 0;
	csum_l4_loc(p->proto, p->l4_off, &csum);

	/* Later fragment: address only, its L4 sum lives in fragment one. */
	if (!ipv4_has_l4(p))
		return nat_rewrite_addr(skb, p, &csum, IPV4_SADDR_OFF,
					p->saddr, cfg->node_ip4);

	switch (p->proto) {
	case IPPROTO_TCP:
	case IPPROTO_UDP:
		if (l4res != L4_OK)
			return DROP_CT_INVALID_HDR;
		break;
	case IPPROTO_ICMP:
		if (l4res == L4_ICMP_ERROR)
			return snat_v4_egress_icmp_error(skb, cfg, p);
		if (l4res == L4_OK && l4->icmp_type == ICMP_ECHO_)
			break;
		/* fall through: only echo requests get a mapping */
	default:
		return snat_v4_is_inbound_reply(&t) ? NAT_PUNT
						    : DROP_NAT_UNSUPP_PROTO;
	}

	ret = snat_v4_get_mapping(cfg, &t, &m, &created);
	if (ret != NAT_DONE)
		return ret;
	if (created)
		*mon = TRACE_MON_NEW;

	ret = nat_rewrite_port(skb, &csum, nat_port_off(p->proto, p->l4_off, 0),
			       l4->sport, m.to_port);
	if (ret != NAT_DONE)
		return ret;
	return nat_rewrite_addr(skb, p, &csum, IPV4_SADDR_OFF, p->saddr,
				m.to_addr);
}

/* ICMP error from outside quoting a packet we masqueraded:
 * the quoted packet is {node:nat_port -> remote}. */
static __always_inline int snat_v4_ingress_icmp_error(struct __sk_buff *skb,
						      const struct ipv4_pkt *p)
{
	struct icmp_inner in;
	struct ipv4_nat_entry *e;

	if (icmp_inner_parse(skb, p, &in) < 0 || in.saddr != p->daddr)
		return NAT_PUNT;
	e = snat_v4_lookup_quoted(&in, NAT_DIR_INGRESS);
	if (!e)
		return NAT_PUNT;
	return nat_rewrite_icmp_error(skb, p, &in, 0, IPV4_DADDR_OFF,
				      p->daddr, e->to_addr, e->to_port);
}

/*
 * Can this inbound packet to the node belong to a masqueraded flow? A
 * TCP/UDP mapping always has its node port inside the SNAT range
 * (snat_v4_get_mapping keeps the pod's port only when it lies there), so a
 * packet to a port outside it needs no lookup: the overlay's VXLAN packets
 * (port 8472) and the node's own connections are the bulk of such traffic.
 */
static __always_inline int snat_v4_ingress_candidate(const struct node_config *cfg,
						     const struct ipv4_pkt *p,
						     const struct l4_info *l4,
						     int l4res)
{
	__u16 pmin, pmax, port;

	if (l4res != L4_OK || !ipv4_has_l4(p) ||
	    (p->proto != IPPROTO_TCP && p->proto != IPPROTO_UDP))
		return 1;
	snat_port_range(cfg, &pmin, &pmax);
	port = bpf_ntohs(l4->dport);
	return port >= pmin && port <= pmax;
}

/*
 * Reverse-translate one inbound packet addressed to the node. Returns
 * NAT_DONE, NAT_PUNT (no mapping: not a masqueraded flow) or a drop reason.
 */
static __always_inline int snat_v4_ingress(struct __sk_buff *skb,
					   const struct ipv4_pkt *p,
					   const struct l4_info *l4, int l4res)
{
	struct ipv4_nat_tuple t = {
		.saddr = p->saddr, .daddr = p->daddr,
		.sport = l4->sport, .dport = l4->dport,
		.proto = p->proto, .dir = NAT_DIR_INGRESS,
	};
	struct ipv4_frag_key fk = {
		.saddr = p->saddr, .daddr = p->daddr,
		.id = p->id, .proto = p->proto,
	};
	struct ipv4_frag_entry fe = {}, *f;
	struct ipv4_nat_entry *e;
	struct csum_loc csum;
	__be32 to_addr;
	__be16 to_port;
	int ret;

	csum_l4_loc(p->proto, p->l4_off, &csum);

	if (!ipv4_has_l4(p)) {
		f = bpf_map_lookup_elem(&cilium_snat_v4_frags, &fk);
		if (!f)
			return NAT_PUNT;
		return nat_rewrite_addr(skb, p, &csum, IPV4_DADDR_OFF,
					p->daddr, f->to_addr);
	}
	if (p->proto == IPPROTO_ICMP && l4res == L4_ICMP_ERROR)
		return snat_v4_ingress_icmp_error(skb, p);
	if (l4res != L4_OK)
		return NAT_PUNT;
	if (p->proto == IPPROTO_ICMP && l4->icmp_type != ICMP_ECHOREPLY_)
		return NAT_PUNT;

	e = bpf_map_lookup_elem(&cilium_snat_v4_external, &t);
	if (!e)
		return NAT_PUNT;
	nat_touch(e, ktime_now());
	to_addr = e->to_addr;
	to_port = e->to_port;

	if (p->frag == IPV4_FRAG_FIRST) {
		fe.to_addr = to_addr;
		bpf_map_update_elem(&cilium_snat_v4_frags, &fk, &fe, BPF_ANY);
	}

	ret = nat_rewrite_port(skb, &csum, nat_port_off(p->proto, p->l4_off, 1),
			       l4->dport, to_port);
	if (ret != NAT_DONE)
		return ret;
	return nat_rewrite_addr(skb, p, &csum, IPV4_DADDR_OFF, p->daddr,
				to_addr);
}
