// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * bpf_overlay.c - packets arriving from other nodes through the overlay.
 *
 * cil_from_overlay runs at ingress of cilium_vxlan (collect-metadata VXLAN,
 * see lib/overlay.h), after the kernel decapsulated the packet. The VNI of
 * the tunnel key is the security identity of the sending endpoint:
 *
 *   to a local endpoint -> conntrack + the endpoint's ingress policy by that
 *                          identity, L2 rewrite, redirect_peer into the pod
 *   to this node's pod CIDR, no such endpoint -> dropped (NO_MATCHING_LOCAL_
 *                          CONTAINER_FOUND)
 *   anything else       -> up the node's stack (TC_ACT_OK)
 */
#define SRC_FILE SRC_FILE_OVERLAY

#include "common.h"
#include "eth.h"
#include "ipv4.h"
#include "maps.h"
#include "config.h"
#include "endpoint.h"
#include "metrics.h"
#include "events.h"
#include "drop.h"
#include "trace.h"
#include "lxc_ingress.h"

SEC("tc")
int cil_from_overlay(struct __sk_buff *skb)
{
	struct event_info info = { .flags = DIR_INGRESS,
				   .ifindex = skb->ifindex,
				   .reason = TRACE_REASON_UNKNOWN };
	struct node_config *cfg = node_config_get();
	struct bpf_tunnel_key key = {};
	struct endpoint_info *dst;
	struct ipv4_pkt p;

	if (!cfg || eth_load_proto(skb) != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	if (ipv4_parse(skb, &p) < 0)
		return send_drop(skb, DROP_INVALID, &info);
	if (bpf_skb_get_tunnel_key(skb, &key, sizeof(key), 0) < 0)
		return send_drop(skb, DROP_NO_TUNNEL_KEY, &info);

	/* The sender's identity travels in the VNI. 0 is no identity: a
	 * sender that is not one of our datapaths; never trust it as any. */
	info.src_identity = key.tunnel_id;
	if (info.src_identity == IDENTITY_UNKNOWN)
		return send_drop(skb, DROP_INVALID_IDENTITY, &info);
	send_trace(skb, cfg, TRACE_FROM_OVERLAY, 0, &info);

	dst = lookup_ip4_endpoint(p.daddr);
	if (!dst) {
		if (ipv4_in_net(p.daddr, cfg->pod_cidr4, cfg->pod_cidr4_mask))
			return send_drop(skb, DROP_NO_LXC, &info);
		return TC_ACT_OK;
	}
	return lxc_ingress_deliver(skb, &p, dst, cfg, &info, 1);
}

char _license[] SEC("license") = "Dual BSD/GPL";
