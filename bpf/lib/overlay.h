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
 */
#pragma once

#include "config.h"

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
