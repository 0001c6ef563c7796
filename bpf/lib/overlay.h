/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * overlay.h - the VXLAN overlay between nodes (routing mode "tunnel").
 *
 * cilium_vxlan is a collect-metadata ("external") VXLAN device: it takes
 * the outer destination and the VNI of each packet from the tunnel key BPF
 * sets before redirecting to it, and hands the key of each packet it
 * decapsulates to cil_from_overlay. The VNI carries the security identity
 * of the source endpoint, so the receiving node enforces ingress policy by
 * identity without looking the sender up.
 *
 * Where a destination is reached through the tunnel is the ipcache's
 * tunnel_endpoint (the remote node's IP): remote pod CIDRs and remote
 * endpoints' /32 entries carry it; there is no separate tunnel map.
 *
 * The fast path (overlay_encap_redirect here, overlay_rx.h on the
 * receiving node) writes and strips the same VXLAN frames in BPF and
 * skips the device: no per-packet route lookup for the uncacheable tunnel
 * dst, no vxlan xmit, UDP socket or GRO cell in between. Whatever it cannot
 * take falls back to cilium_vxlan, so both ends interoperate with any
 * VXLAN sender on the port.
 */
#pragma once

#include <linux/ip.h>
#include <linux/udp.h>
#include "common.h"
#include "config.h"
#include "csum.h"

/* A VNI has 24 bits: the identities that can travel in it. */
#define OVERLAY_VNI_MAX		0xffffff

/* Outer TTL, as Linux's default (IPDEFTTL). */
#define OVERLAY_OUTER_TTL	64

/* The node to encapsulate to for a destination `remote` describes, or 0
 * when the overlay is off or does not reach it. */
static __always_inline __be32
overlay_tunnel_endpoint(const struct node_config *cfg,
			const struct remote_endpoint_info *remote)
{
	if (!remote || !(cfg->flags & NODE_F_TUNNEL) || !cfg->tunnel_ifindex)
		return 0;
	if (remote->tunnel_endpoint == cfg->node_ip4)
		return 0;
	return remote->tunnel_endpoint;
}

/* Sets the tunnel key for cilium_vxlan: outer destination and the source
 * identity as the VNI. The outer UDP checksum stays zero, as Linux's own
 * VXLAN over IPv4 does by default. */
static __always_inline int overlay_set_key(struct __sk_buff *skb,
					   __be32 endpoint,
					   __u32 src_identity)
{
	struct bpf_tunnel_key key = {};

	key.remote_ipv4 = bpf_ntohl(endpoint);	/* the helper wants host order */
	key.tunnel_id = src_identity;
	key.tunnel_ttl = OVERLAY_OUTER_TTL;
	return bpf_skb_set_tunnel_key(skb, &key, sizeof(key),
				      BPF_F_ZERO_CSUM_TX);
}

/* Outer headers of a VXLAN frame: IPv4 + UDP + VXLAN + inner Ethernet. */
#define OVERLAY_ENCAP_LEN	(20 + 8 + 8 + ETH_HLEN)

/* RFC 7348: the I flag says the VNI is valid; the VNI is the upper 24 bits
 * of the second word. */
#define OVERLAY_VXLAN_I_FLAG	0x08000000

/* Outer UDP source ports, as Linux's default ip_local_port_range. */
#define OVERLAY_SPORT_MIN	32768
#define OVERLAY_SPORT_MAX	61000

struct vxlan_header {
	__be32 flags;
	__be32 vni;		/* VNI << 8 */
};

/* The first 64 bytes of an encapsulated frame, laid out after two bytes of
 * padding so that every header is naturally aligned on the stack. */
struct overlay_frame {
	__u16 pad;
	struct ethhdr outer_eth;	/*  2 */
	struct iphdr ip;		/* 16 */
	struct udphdr udp;		/* 36 */
	struct vxlan_header vxlan;	/* 44 */
	struct ethhdr inner_eth;	/* 52 */
};
LAYOUT_ASSERT(offsetof(struct overlay_frame, ip) == 16, "overlay ip");
LAYOUT_ASSERT(offsetof(struct overlay_frame, inner_eth) == 52, "overlay eth");
LAYOUT_ASSERT(offsetof(struct overlay_frame, inner_eth) + ETH_HLEN -
	      offsetof(struct overlay_frame, outer_eth) ==
	      ETH_HLEN + OVERLAY_ENCAP_LEN, "overlay frame size");

/* Result of overlay_encap_redirect when the fast path does not apply and
 * nothing was changed: the caller uses cilium_vxlan instead. */
#define OVERLAY_USE_DEVICE	(-1)
/* The packet was encapsulated but could not be written: drop it. */
#define OVERLAY_WRITE_FAILED	(-2)

/* Linux's udp_flow_src_port: the flow hash picks the outer source port, so
 * the underlay's ECMP and RSS spread flows and keep each on one path. */
static __always_inline __be16 overlay_src_port(struct __sk_buff *skb)
{
	__u32 hash = bpf_get_hash_recalc(skb);

	hash ^= hash << 16;
	return bpf_htons((__u16)((((__u64)hash *
				   (OVERLAY_SPORT_MAX - OVERLAY_SPORT_MIN)) >> 32) +
				 OVERLAY_SPORT_MIN));
}

/*
 * The fast path: encapsulate to `endpoint` with `vni` in BPF and hand the
 * frame to the underlay device the node's FIB names. Returns a TC action,
 * OVERLAY_USE_DEVICE when the packet is left as it was (no native device
 * or tunnel port configured, no unicast route or no resolved neighbour yet,
 * a frame the outer MTU cannot carry unsegmented, a GSO type the kernel
 * cannot re-encapsulate), or OVERLAY_WRITE_FAILED.
 *
 * TCP's GSO packets keep their segment size (FIXED_GSO): the pod's MSS
 * already leaves room for the 50 bytes, and the device segments the frame
 * as UDP-tunnel GSO exactly as it would after cilium_vxlan.
 */
static __always_inline int overlay_encap_redirect(struct __sk_buff *skb,
						  const struct node_config *cfg,
						  __be32 endpoint, __u32 vni)
{
	struct bpf_fib_lookup fib = {};
	struct overlay_frame f = {};
	__u32 outer_len;
	__be16 sport;
	int fib_ret;

	if (!cfg->native_ifindex || !cfg->node_ip4 || !cfg->tunnel_port)
		return OVERLAY_USE_DEVICE;
	outer_len = skb->len - ETH_HLEN + OVERLAY_ENCAP_LEN;
	if (outer_len > 0xffff)
		return OVERLAY_USE_DEVICE;

	fib.family = 2;		/* AF_INET */
	fib.ipv4_src = cfg->node_ip4;
	fib.ipv4_dst = endpoint;
	fib.ifindex = cfg->native_ifindex;
	/* Segments are checked against the device MTU by the helper; a
	 * single frame by its outer length, here. */
	if (!skb->gso_size)
		fib.tot_len = outer_len;
	fib_ret = bpf_fib_lookup(skb, &fib, sizeof(fib), BPF_FIB_LOOKUP_OUTPUT);
	/* An unresolved neighbour too: the device's route output resolves it
	 * (bpf_redirect_neigh from cilium_host's egress sent the frame with
	 * cilium_host's MACs), and the next packets find it. */
	if (fib_ret != BPF_FIB_LKUP_RET_SUCCESS)
		return OVERLAY_USE_DEVICE;

	if (bpf_skb_load_bytes(skb, 0, &f.inner_eth, ETH_HLEN) < 0)
		return OVERLAY_USE_DEVICE;
	sport = overlay_src_port(skb);
	if (bpf_skb_adjust_room(skb, OVERLAY_ENCAP_LEN, BPF_ADJ_ROOM_MAC,
				BPF_F_ADJ_ROOM_ENCAP_L3_IPV4 |
				BPF_F_ADJ_ROOM_ENCAP_L4_UDP |
				BPF_F_ADJ_ROOM_ENCAP_L2_ETH |
				BPF_F_ADJ_ROOM_ENCAP_L2(ETH_HLEN) |
				BPF_F_ADJ_ROOM_FIXED_GSO) < 0)
		return OVERLAY_USE_DEVICE;

	__builtin_memcpy(f.outer_eth.h_dest, fib.dmac, ETH_ALEN);
	__builtin_memcpy(f.outer_eth.h_source, fib.smac, ETH_ALEN);
	f.outer_eth.h_proto = bpf_htons(ETH_P_IP);
	f.ip.version = 4;
	f.ip.ihl = 5;
	f.ip.tot_len = bpf_htons((__u16)outer_len);
	f.ip.ttl = OVERLAY_OUTER_TTL;
	f.ip.protocol = IPPROTO_UDP;
	f.ip.saddr = cfg->node_ip4;
	f.ip.daddr = endpoint;
	f.ip.check = csum_fold(bpf_csum_diff(NULL, 0, (__be32 *)&f.ip,
					     sizeof(f.ip), 0));
	f.udp.source = sport;
	f.udp.dest = cfg->tunnel_port;
	f.udp.len = bpf_htons((__u16)(outer_len - sizeof(f.ip)));
	f.vxlan.flags = bpf_htonl(OVERLAY_VXLAN_I_FLAG);
	f.vxlan.vni = bpf_htonl(vni << 8);
	if (bpf_skb_store_bytes(skb, 0, &f.outer_eth,
				ETH_HLEN + OVERLAY_ENCAP_LEN, 0) < 0)
		return OVERLAY_WRITE_FAILED;
	return bpf_redirect(fib.ifindex, 0);
}

/* Into the overlay to `endpoint` with `vni`: the fast path, else through
 * cilium_vxlan. Returns a TC action or OVERLAY_WRITE_FAILED (drop it). */
static __always_inline int overlay_redirect(struct __sk_buff *skb,
					    const struct node_config *cfg,
					    __be32 endpoint, __u32 vni)
{
	int ret = overlay_encap_redirect(skb, cfg, endpoint, vni);

	if (ret != OVERLAY_USE_DEVICE)
		return ret;
	if (overlay_set_key(skb, endpoint, vni) < 0)
		return OVERLAY_WRITE_FAILED;
	return bpf_redirect(cfg->tunnel_ifindex, 0);
}
