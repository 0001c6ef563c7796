/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * lxc_ingress.h - conntrack and ingress policy of a local endpoint for a
 * packet arriving from outside the endpoint's own node path: from the
 * node's stack (cil_from_host) or from another node over the overlay
 * (cil_from_overlay). The caller knows the source's security identity.
 */
#pragma once

#include "maps.h"
#include "l4.h"
#include "conntrack.h"
#include "policy.h"
#include "drop.h"
#include "policy_log.h"
#include "eth.h"
#include "metrics.h"
#include "trace.h"

/*
 * Returns 0 or a drop reason, reported as a policy verdict (policy_log.h);
 * *ct and *mon describe the packet in the
 * endpoint's ingress view. Replies and related ICMP errors pass by
 * conntrack; new and established forward traffic is checked on every
 * packet, and a new connection is recorded once it is allowed.
 */
static __always_inline int lxc_ingress_policy(struct __sk_buff *skb,
					      const struct ipv4_pkt *p,
					      const struct endpoint_info *dst,
					      __u32 src_identity,
					      const struct node_config *cfg,
					      const struct event_info *info,
					      __u8 *ct, __u8 *mon)
{
	struct ct4_key tuple = {
		.saddr = p->saddr, .daddr = p->daddr, .proto = p->proto,
	};
	struct policy_l4 pl;
	struct icmp_inner inner;
	struct l4_info l4;
	int l4res, ret;

	*mon = 0;
	l4res = l4_parse(skb, p, &l4);
	if (l4res == L4_TRUNCATED)
		return DROP_CT_INVALID_HDR;
	tuple.sport = l4.sport;
	tuple.dport = l4.dport;
	policy_l4_init(&pl, p->proto, l4res, &l4);

	if (l4res == L4_ICMP_ERROR)
		*ct = icmp_inner_parse(skb, p, &inner) == 0 ?
		      ct4_lookup_related(&inner, CT_INGRESS) : CT_NEW;
	else if (l4_trackable(l4res))
		*ct = ct4_lookup(&tuple, CT_INGRESS, l4.tcp_flags, skb->len,
				 mon);
	else
		*ct = CT_NEW;

	if (*ct == CT_REPLY || *ct == CT_RELATED)
		return 0;
	ret = policy_can_ingress4(dst, &pl, src_identity);
	send_policy_verdict(skb, cfg, dst, DIR_INGRESS, src_identity, &pl,
			    ret, *ct, info);
	if (ret)
		return ret;
	if (*ct == CT_NEW && l4_trackable(l4res) &&
	    ct4_create(&tuple, CT_INGRESS, l4.tcp_flags, skb->len,
		       src_identity))
		return DROP_CT_CREATE_FAILED;
	return 0;
}

/*
 * Ingress policy of the local endpoint `dst`, then delivery: MACs of the
 * endpoint's link, traced TO_LXC. `peer`: straight into the pod's namespace
 * (bpf_redirect_peer, from a device's ingress); else out of its host veth.
 */
static __always_inline int lxc_ingress_deliver(struct __sk_buff *skb,
					       const struct ipv4_pkt *p,
					       const struct endpoint_info *dst,
					       const struct node_config *cfg,
					       struct event_info *info,
					       int peer)
{
	__u8 ct = CT_NEW, mon = 0;
	int ret;

	info->dst_identity = dst->sec_identity;
	info->dst_id = dst->lxc_id;
	ret = lxc_ingress_policy(skb, p, dst, info->src_identity, cfg, info,
				 &ct, &mon);
	if (ret)
		return send_drop(skb, ret, info);

	if (eth_store_macs(skb, dst->mac, dst->node_mac) < 0)
		return send_drop(skb, DROP_WRITE_ERROR, info);

	info->reason = ct_trace_reason(ct);
	if (ct == CT_REPLY)
		info->flags |= EVENT_F_REPLY;
	info->ifindex = dst->ifindex;
	metrics_forward(skb, DIR_INGRESS);
	send_trace(skb, cfg, TRACE_TO_LXC, mon, info);
	return peer ? bpf_redirect_peer(dst->ifindex, 0) :
		      bpf_redirect(dst->ifindex, 0);
}
