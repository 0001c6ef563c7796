// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * bpf_host.c - the node's side of the datapath.
 *
 *   cil_from_host    tc egress of cilium_host: the node's stack sends a
 *                    packet to a pod (host -> pod, and world -> pod after
 *                    reverse masquerade). Deliver to the endpoint's veth;
 *                    a pod on another node (tunnel mode) gets the overlay.
 *   cil_to_netdev    tc egress of the native device: masquerade pod traffic
 *                    leaving the cluster behind the node address.
 *   cil_from_netdev  tc ingress of the native device: VXLAN from other
 *                    nodes straight into local pods (lib/overlay_rx.h),
 *                    reverse-masquerade replies, then let the stack route
 *                    them to cilium_host.
 *
 * Everything these programs do not own passes untouched (TC_ACT_OK).
 */
#define SRC_FILE SRC_FILE_HOST

#include "common.h"
#include "eth.h"
#include "ipv4.h"
#include "l4.h"
#include "maps.h"
#include "config.h"
#include "endpoint.h"
#include "metrics.h"
#include "events.h"
#include "drop.h"
#include "trace.h"
#include "conntrack.h"
#include "policy.h"
#include "policy_log.h"
#include "nat.h"
#include "lxc_ingress.h"
#include "overlay_rx.h"

/* ------------------------------------------------------------------------
 * cil_from_host
 */

/* The node's own traffic to a pod on another node: tunnel mode routes other
 * nodes' pod CIDRs into cilium_host. It travels as REMOTE_NODE, which is
 * what the receiving node's policy sees of another node's host (upstream
 * does the same: a node never signals HOST to another). Untracked here:
 * the receiving endpoint's conntrack lets the replies back. */
static __always_inline int host_to_overlay(struct __sk_buff *skb,
					   const struct node_config *cfg,
					   const struct ipv4_pkt *p,
					   struct event_info *info)
{
	struct remote_endpoint_info *remote = ipcache_lookup4(p->daddr);
	__be32 tunnel = overlay_tunnel_endpoint(cfg, remote);
	int ret;

	if (!tunnel)
		return TC_ACT_OK;
	info->flags = DIR_EGRESS;
	info->src_identity = IDENTITY_REMOTE_NODE;
	info->dst_identity = remote->sec_identity;
	info->ifindex = cfg->tunnel_ifindex;
	info->reason = TRACE_REASON_UNKNOWN;
	metrics_forward(skb, DIR_EGRESS);
	send_trace(skb, cfg, TRACE_TO_OVERLAY, 0, info);
	ret = overlay_redirect(skb, cfg, tunnel, IDENTITY_REMOTE_NODE);
	if (ret == OVERLAY_WRITE_FAILED)
		return send_drop(skb, DROP_WRITE_ERROR, info);
	return ret;
}

SEC("tc")
int cil_from_host(struct __sk_buff *skb)
{
	struct event_info info = { .flags = DIR_INGRESS,
				   .ifindex = skb->ifindex };
	struct node_config *cfg = node_config_get();
	struct endpoint_info *dst;
	struct ipv4_pkt p;

	if (!cfg || eth_load_proto(skb) != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	if (ipv4_parse(skb, &p) < 0)
		return TC_ACT_OK;
	if (!ipv4_in_net(p.daddr, cfg->pod_cidr4, cfg->pod_cidr4_mask))
		return host_to_overlay(skb, cfg, &p, &info);

	/* Host (the node's own addresses), other nodes, CIDRs, the world: as
	 * cilium_ipcache says, WORLD if no prefix holds the source. */
	info.src_identity = ipv4_remote_identity(p.saddr);
	info.reason = TRACE_REASON_UNKNOWN;
	send_trace(skb, cfg, TRACE_FROM_HOST, 0, &info);

	dst = lookup_ip4_endpoint(p.daddr);
	if (!dst)
		return send_drop(skb, DROP_NO_LXC, &info);
	return lxc_ingress_deliver(skb, &p, dst, cfg, &info, 0);
}

/* ------------------------------------------------------------------------
 * cil_to_netdev / cil_from_netdev: masquerade
 */

/* Does this outbound packet leave the cluster from a local pod? */
static __always_inline int snat_v4_needed(const struct node_config *cfg,
					  const struct ipv4_pkt *p)
{
	if (!(cfg->flags & NODE_F_MASQUERADE) || !cfg->node_ip4)
		return 0;
	if (!ipv4_in_net(p->saddr, cfg->pod_cidr4, cfg->pod_cidr4_mask))
		return 0;
	if (ipv4_in_net(p->daddr, cfg->pod_cidr4, cfg->pod_cidr4_mask) ||
	    ipv4_in_net(p->daddr, cfg->cluster_cidr4, cfg->cluster_cidr4_mask))
		return 0;
	return 1;
}

SEC("tc")
int cil_to_netdev(struct __sk_buff *skb)
{
	struct event_info info = { .flags = DIR_EGRESS,
				   .ifindex = skb->ifindex,
				   .dst_identity = IDENTITY_WORLD,
				   .reason = TRACE_REASON_UNKNOWN };
	struct node_config *cfg = node_config_get();
	struct endpoint_info *src;
	struct ipv4_pkt p;
	struct l4_info l4;
	int l4res, ret;
	__u8 mon = 0;

	if (!cfg || eth_load_proto(skb) != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	if (ipv4_parse(skb, &p) < 0 || !snat_v4_needed(cfg, &p))
		return TC_ACT_OK;

	/* Identities for events: the pod is local, or at least ours. */
	src = lookup_ip4_endpoint(p.saddr);
	if (src) {
		info.source = src->lxc_id;
		info.src_identity = src->sec_identity;
	}
	info.orig_ip4 = p.saddr;

	l4res = l4_parse(skb, &p, &l4);
	if (l4res == L4_TRUNCATED)
		return send_drop(skb, DROP_CT_INVALID_HDR, &info);

	ret = snat_v4_egress(skb, cfg, &p, &l4, l4res, &mon);
	if (ret == NAT_PUNT)
		return TC_ACT_OK;
	if (ret != NAT_DONE)
		return send_drop(skb, ret, &info);

	metrics_forward(skb, DIR_EGRESS);
	send_trace(skb, cfg, TRACE_TO_NETWORK, mon, &info);
	return TC_ACT_OK;
}

SEC("tc")
int cil_from_netdev(struct __sk_buff *skb)
{
	struct event_info info = { .flags = DIR_INGRESS,
				   .ifindex = skb->ifindex,
				   .src_identity = IDENTITY_WORLD,
				   .reason = TRACE_REASON_UNKNOWN };
	struct node_config *cfg = node_config_get();
	struct ipv4_pkt p;
	struct l4_info l4;
	int l4res, ret;

	if (!cfg || !cfg->node_ip4 ||
	    !(cfg->flags & (NODE_F_MASQUERADE | NODE_F_TUNNEL)))
		return TC_ACT_OK;
	if (eth_load_proto(skb) != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	if (ipv4_parse(skb, &p) < 0 || p.daddr != cfg->node_ip4)
		return TC_ACT_OK;

	if (cfg->flags & NODE_F_TUNNEL) {
		ret = overlay_rx_fast(skb, cfg, &p);
		if (ret != OVERLAY_USE_DEVICE)
			return ret;
	}
	if (!(cfg->flags & NODE_F_MASQUERADE))
		return TC_ACT_OK;

	l4res = l4_parse(skb, &p, &l4);
	if (l4res == L4_TRUNCATED)
		return TC_ACT_OK;
	if (!snat_v4_ingress_candidate(cfg, &p, &l4, l4res))
		return TC_ACT_OK;

	ret = snat_v4_ingress(skb, &p, &l4, l4res);
	if (ret == NAT_PUNT)
		return TC_ACT_OK;
	info.orig_ip4 = p.daddr;
	if (ret != NAT_DONE)
		return send_drop(skb, ret, &info);

	metrics_forward(skb, DIR_INGRESS);
	send_trace(skb, cfg, TRACE_FROM_NETWORK, 0, &info);
	return TC_ACT_OK;
}

char _license[] SEC("license") = "Dual BSD/GPL";
