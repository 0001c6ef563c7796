/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * overlay_rx.h - packets from other nodes through the overlay, on the
 * receiving node: one delivery for both ways they arrive.
 *
 *   cil_from_overlay  the kernel decapsulated them (cilium_vxlan ingress)
 *   cil_from_netdev   the BPF fast path decapsulates them on the native
 *                     device (overlay_rx_fast), skipping the node's IP
 *                     input, the UDP socket and the VXLAN device
 *
 * Either way the VNI is the sending endpoint's security identity and the
 * packet is traced FROM_OVERLAY on cilium_vxlan, so flows look the same.
 */
#pragma once

#include "common.h"
#include "ipv4.h"
#include "config.h"
#include "endpoint.h"
#include "events.h"
#include "drop.h"
#include "trace.h"
#include "overlay.h"
#include "lxc_ingress.h"

/*
 * An inner IPv4 packet from `src_identity`'s endpoint on another node:
 *   to a local endpoint -> conntrack + the endpoint's ingress policy by that
 *                          identity, L2 rewrite, redirect_peer into the pod
 *   to this node's pod CIDR, no such endpoint -> dropped (NO_LXC), except
 *                          its gateway on cilium_host (replies to this node's
 *                          own traffic) which, as anything else, goes
 *   up the node's stack (TC_ACT_OK)
 * 0 is no identity: a sender that is not one of our datapaths; never trust
 * it as any. Nor HOST: another node's host travels as REMOTE_NODE (as
 * upstream), so HOST from the overlay is a lie about being this node.
 */
static __always_inline int overlay_deliver(struct __sk_buff *skb,
					   const struct node_config *cfg,
					   __u32 src_identity,
					   struct event_info *info)
{
	struct endpoint_info *dst;
	struct ipv4_pkt p;

	if (ipv4_parse(skb, &p) < 0)
		return send_drop(skb, DROP_INVALID, info);
	info->src_identity = src_identity;
	if (src_identity == IDENTITY_UNKNOWN || src_identity == IDENTITY_HOST)
		return send_drop(skb, DROP_INVALID_IDENTITY, info);
	send_trace(skb, cfg, TRACE_FROM_OVERLAY, 0, info);

	dst = lookup_ip4_endpoint(p.daddr);
	if (!dst) {
		/* The inner frame is addressed to the sender's gateway MAC: to
		 * the stack it would be another host's and be dropped. */
		if (p.daddr == cfg->host_ip4) {
			bpf_skb_change_type(skb, 0 /* PACKET_HOST */);
			return TC_ACT_OK;
		}
		if (ipv4_in_net(p.daddr, cfg->pod_cidr4, cfg->pod_cidr4_mask))
			return send_drop(skb, DROP_NO_LXC, info);
		return TC_ACT_OK;
	}
	return lxc_ingress_deliver(skb, &p, dst, cfg, info, 1);
}

/* What follows the outer IPv4 header of a VXLAN frame, up to the inner
 * IPv4 destination. */
struct overlay_rx_headers {
	struct udphdr udp;		/*  0 */
	struct vxlan_header vxlan;	/*  8 */
	__u8 inner_macs[2 * ETH_ALEN];	/* 16 */
	__be16 inner_proto;		/* 28 */
	__u8 inner_ip[16];		/* 30: up to the destination */
	__be32 inner_daddr;		/* 46 */
} __attribute__((packed));
LAYOUT_ASSERT(sizeof(struct overlay_rx_headers) == 50, "overlay rx size");

/*
 * The receiving half of the fast path, for a packet `outer` (parsed at the
 * native device's ingress) addressed to this node. A VXLAN frame on our
 * port that carries IPv4 to a local endpoint is decapsulated here and
 * delivered; everything else returns OVERLAY_USE_DEVICE untouched and
 * takes the kernel's way to cilium_vxlan (fragments, IP options, GRO
 * aggregates, unknown destinations, no identity: cil_from_overlay decides
 * those as before).
 */
static __always_inline int overlay_rx_fast(struct __sk_buff *skb,
					   const struct node_config *cfg,
					   const struct ipv4_pkt *outer)
{
	struct event_info info = { .flags = DIR_INGRESS,
				   .ifindex = cfg->tunnel_ifindex,
				   .reason = TRACE_REASON_UNKNOWN };
	struct overlay_rx_headers h;
	__u32 identity;

	if (!cfg->tunnel_port || !cfg->tunnel_ifindex ||
	    outer->proto != IPPROTO_UDP || outer->frag != IPV4_FRAG_NONE ||
	    outer->l4_off != IPV4_L3_OFF + sizeof(struct iphdr) ||
	    skb->gso_size)
		return OVERLAY_USE_DEVICE;
	if (bpf_skb_load_bytes(skb, outer->l4_off, &h, sizeof(h)) < 0)
		return OVERLAY_USE_DEVICE;
	if (h.udp.dest != cfg->tunnel_port ||
	    !(h.vxlan.flags & bpf_htonl(OVERLAY_VXLAN_I_FLAG)) ||
	    h.inner_proto != bpf_htons(ETH_P_IP))
		return OVERLAY_USE_DEVICE;
	identity = bpf_ntohl(h.vxlan.vni) >> 8;
	if (identity == IDENTITY_UNKNOWN || !lookup_ip4_endpoint(h.inner_daddr))
		return OVERLAY_USE_DEVICE;

	/* Outer IPv4, UDP, VXLAN and inner Ethernet go; the outer Ethernet
	 * header stays in front of the inner IPv4 packet. */
	if (bpf_skb_adjust_room(skb, -(__s32)OVERLAY_ENCAP_LEN,
				BPF_ADJ_ROOM_MAC, 0) < 0)
		return OVERLAY_USE_DEVICE;
	return overlay_deliver(skb, cfg, identity, &info);
}
