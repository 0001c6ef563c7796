// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * bpf_lxc.c - the endpoint (pod) datapath.
 *
 * cil_from_container runs at tc ingress of every pod's host-side veth, i.e.
 * on every packet the pod sends. One program serves all endpoints: the
 * endpoint is found in cilium_lxc by the packet's source address and must
 * sit behind the interface the packet came in on.
 *
 *   ARP request     -> answered with the host-side veth MAC, sent back out
 *   IPv4            -> anti-spoofing, conntrack, policy, then
 *                        local endpoint: L2 rewrite, TTL-1, redirect_peer
 *                        pod on another node (tunnel mode, the ipcache
 *                        names its node): tunnel key with the
 *                        source identity as VNI, redirect to cilium_vxlan
 *                        anything else:  up the node's stack (TC_ACT_OK)
 *   anything else   -> dropped (UNSUPPORTED_L3_PROTOCOL)
 */
#define SRC_FILE SRC_FILE_LXC

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
#include "arp.h"
#include "overlay.h"

/* The outcome of conntrack + policy for one packet. */
struct lxc_verdict {
	__u8 ct_egress;		/* ct_status in the source's egress view */
	__u8 ct_ingress;	/* ct_status in the destination's view */
	__u8 mon;		/* TRACE_MON_* */
	__u8 drop_dir;		/* direction to account a drop to */
};

/* Conntrack one view. Later fragments cannot be tracked and report NEW
 * (policy still sees them, with zero ports); ICMP errors are RELATED if
 * they quote a tracked connection. */
static __always_inline int lxc_ct_view(struct __sk_buff *skb,
				       const struct ct4_key *tuple,
				       const struct icmp_inner *inner,
				       int l4res, __u8 tcp_flags, int view,
				       __u8 *mon)
{
	*mon = 0;
	if (l4res == L4_ICMP_ERROR)
		return inner ? ct4_lookup_related(inner, view) : CT_NEW;
	if (!l4_trackable(l4res))
		return CT_NEW;
	return ct4_lookup(tuple, view, tcp_flags, skb->len, mon);
}

/*
 * Conntrack and policy for a packet leaving endpoint `src`.
 *
 * This is THE place where policy applies to traffic from a pod: the egress
 * policy of the source endpoint and, when the destination is a local
 * endpoint, its ingress policy. Replies and related ICMP errors of tracked
 * connections bypass policy; new and established forward traffic is
 * checked on every packet, so revoking an allow stops a connection.
 * Connections are recorded only after every check passed.
 *
 * Remote identities: the destination's is that of the local endpoint, else
 * cilium_ipcache's, else WORLD; the source's is the endpoint's own.
 * Returns 0 or a drop reason (direction in v->drop_dir): DROP_POLICY when
 * no entry allows the packet, DROP_POLICY_DENY when a deny entry matches.
 * Each decision is reported as a policy verdict (policy_log.h).
 */
static __always_inline int lxc_ct_and_policy(struct __sk_buff *skb,
					     const struct ct4_key *tuple,
					     const struct icmp_inner *inner,
					     int l4res, __u8 tcp_flags,
					     const struct policy_l4 *pl,
					     const struct endpoint_info *src,
					     const struct endpoint_info *dst,
					     __u32 dst_identity,
					     const struct node_config *cfg,
					     const struct event_info *info,
					     struct lxc_verdict *v)
{
	int tracked = l4_trackable(l4res);
	__u8 mon_in = 0;
	int ret;

	v->ct_egress = lxc_ct_view(skb, tuple, inner, l4res, tcp_flags,
				   CT_EGRESS, &v->mon);
	if (v->ct_egress != CT_REPLY && v->ct_egress != CT_RELATED) {
		ret = policy_can_egress4(src, pl, dst_identity);
		send_policy_verdict(skb, cfg, src, DIR_EGRESS, dst_identity,
				    pl, ret, v->ct_egress, info);
		if (ret) {
			v->drop_dir = DIR_EGRESS;
			return ret;
		}
	}

	if (dst) {
		v->ct_ingress = lxc_ct_view(skb, tuple, inner, l4res,
					    tcp_flags, CT_INGRESS, &mon_in);
		v->mon |= mon_in;
		if (v->ct_ingress != CT_REPLY &&
		    v->ct_ingress != CT_RELATED) {
			ret = policy_can_ingress4(dst, pl, src->sec_identity);
			send_policy_verdict(skb, cfg, dst, DIR_INGRESS,
					    src->sec_identity, pl, ret,
					    v->ct_ingress, info);
			if (ret) {
				v->drop_dir = DIR_INGRESS;
				return ret;
			}
		}
		if (tracked && v->ct_ingress == CT_NEW &&
		    ct4_create(tuple, CT_INGRESS, tcp_flags, skb->len,
			       src->sec_identity)) {
			v->drop_dir = DIR_INGRESS;
			return DROP_CT_CREATE_FAILED;
		}
	}

	if (tracked && v->ct_egress == CT_NEW &&
	    ct4_create(tuple, CT_EGRESS, tcp_flags, skb->len,
		       src->sec_identity)) {
		v->drop_dir = DIR_EGRESS;
		return DROP_CT_CREATE_FAILED;
	}
	return 0;
}

/* To a pod on another node: into the tunnel with the source identity in the
 * VNI, encapsulated here (overlay.h's fast path) or else by cilium_vxlan.
 * Policy and conntrack have passed. The inner packet is not written to
 * (no TTL decrement, no MAC rewrite): a TCP sender's skb shares its header
 * with the retransmit queue, and a write would copy it on every packet. */
static __always_inline int lxc_to_overlay(struct __sk_buff *skb,
					  const struct node_config *cfg,
					  const struct endpoint_info *src,
					  __be32 tunnel_endpoint,
					  const struct lxc_verdict *v,
					  struct event_info *info)
{
	int ret;

	if (src->sec_identity > OVERLAY_VNI_MAX)
		return send_drop(skb, DROP_INVALID_IDENTITY, info);

	/* Traced before encapsulation: the event shows the pod's packet. */
	info->reason = ct_trace_reason(v->ct_egress);
	if (v->ct_egress == CT_REPLY)
		info->flags |= EVENT_F_REPLY;
	info->ifindex = cfg->tunnel_ifindex;
	metrics_forward(skb, DIR_EGRESS);
	send_trace(skb, cfg, TRACE_TO_OVERLAY, v->mon, info);

	ret = overlay_redirect(skb, cfg, tunnel_endpoint, src->sec_identity);
	if (ret == OVERLAY_WRITE_FAILED)
		return send_drop(skb, DROP_WRITE_ERROR, info);
	return ret;
}

static __always_inline int handle_ipv4(struct __sk_buff *skb,
				       const struct node_config *cfg)
{
	struct event_info info = { .flags = DIR_EGRESS,
				   .ifindex = skb->ifindex };
	struct endpoint_info *src, *dst;
	struct remote_endpoint_info *remote;
	struct lxc_verdict v = {};
	__be32 tunnel = 0;
	struct policy_l4 pl;
	struct icmp_inner inner;
	struct ipv4_pkt p;
	struct l4_info l4;
	struct ct4_key tuple = {};
	int l4res, ret, have_inner = 0;

	if (ipv4_parse(skb, &p) < 0)
		return send_drop(skb, DROP_INVALID, &info);

	/* Anti-spoofing: the source must be the endpoint behind this veth. */
	src = lookup_ip4_endpoint(p.saddr);
	if (!src || src->ifindex != skb->ifindex)
		return send_drop(skb, DROP_INVALID_SIP, &info);

	info.source = src->lxc_id;
	info.src_identity = src->sec_identity;
	dst = lookup_ip4_endpoint(p.daddr);
	if (dst) {
		info.dst_identity = dst->sec_identity;
		info.dst_id = dst->lxc_id;
	} else {
		remote = ipcache_lookup4(p.daddr);
		info.dst_identity = remote ? remote->sec_identity
					   : IDENTITY_WORLD;
		tunnel = overlay_tunnel_endpoint(cfg, remote);
	}
	info.reason = TRACE_REASON_UNKNOWN;
	send_trace(skb, cfg, TRACE_FROM_LXC, 0, &info);

	/* We route between local pods: a packet at its last hop dies here,
	 * before it leaves any conntrack state behind. */
	if (dst && p.ttl <= 1)
		return send_drop(skb, DROP_TTL_EXCEEDED, &info);

	l4res = l4_parse(skb, &p, &l4);
	if (l4res == L4_TRUNCATED)
		return send_drop(skb, DROP_CT_INVALID_HDR, &info);
	if (l4res == L4_ICMP_ERROR)
		have_inner = icmp_inner_parse(skb, &p, &inner) == 0;

	tuple.saddr = p.saddr;
	tuple.daddr = p.daddr;
	tuple.sport = l4.sport;
	tuple.dport = l4.dport;
	tuple.proto = p.proto;
	policy_l4_init(&pl, p.proto, l4res, &l4);

	ret = lxc_ct_and_policy(skb, &tuple, have_inner ? &inner : NULL, l4res,
				l4.tcp_flags, &pl, src, dst, info.dst_identity,
				cfg, &info, &v);
	if (ret) {
		info.flags = v.drop_dir;
		return send_drop(skb, ret, &info);
	}

	if (tunnel)
		return lxc_to_overlay(skb, cfg, src, tunnel, &v, &info);

	if (!dst) {
		/* Host, other nodes, the world: the node's stack routes it
		 * (and cil_to_netdev masquerades it on the way out). */
		info.reason = ct_trace_reason(v.ct_egress);
		if (v.ct_egress == CT_REPLY)
			info.flags |= EVENT_F_REPLY;
		metrics_forward(skb, DIR_EGRESS);
		send_trace(skb, cfg, TRACE_TO_STACK, v.mon, &info);
		return TC_ACT_OK;
	}

	/* Local delivery: L3 hop (TTL-1), then straight into the pod. */
	if (ipv4_dec_ttl(skb, &p) < 0)
		return send_drop(skb, DROP_CSUM_L3, &info);
	if (eth_store_macs(skb, dst->mac, dst->node_mac) < 0)
		return send_drop(skb, DROP_WRITE_ERROR, &info);

	info.flags = DIR_INGRESS;
	info.reason = ct_trace_reason(v.ct_ingress);
	if (v.ct_ingress == CT_REPLY)
		info.flags |= EVENT_F_REPLY;
	info.ifindex = dst->ifindex;
	metrics_forward(skb, DIR_EGRESS);
	metrics_forward(skb, DIR_INGRESS);
	send_trace(skb, cfg, TRACE_TO_LXC, v.mon, &info);
	return bpf_redirect_peer(dst->ifindex, 0);
}

static __always_inline int handle_arp(struct __sk_buff *skb)
{
	struct event_info info = { .flags = DIR_EGRESS,
				   .ifindex = skb->ifindex };
	struct endpoint_info *src;
	struct arp_frame f;
	__be32 sip, tip;

	if (arp_load_request(skb, &f, &sip, &tip) != ARP_REQUEST_OK)
		return TC_ACT_OK;

	src = lookup_ip4_endpoint(sip);
	if (!src || src->ifindex != skb->ifindex)
		return send_drop(skb, DROP_INVALID_SIP, &info);

	if (arp_write_reply(skb, &f, src->node_mac) < 0) {
		info.source = src->lxc_id;
		return send_drop(skb, DROP_WRITE_ERROR, &info);
	}
	metrics_forward(skb, DIR_EGRESS);
	return bpf_redirect(skb->ifindex, 0);
}

SEC("tc")
int cil_from_container(struct __sk_buff *skb)
{
	struct event_info info = { .flags = DIR_EGRESS,
				   .ifindex = skb->ifindex };
	struct node_config *cfg = node_config_get();

	if (!cfg)
		return TC_ACT_OK;

	switch (eth_load_proto(skb)) {
	case bpf_htons(ETH_P_IP):
		return handle_ipv4(skb, cfg);
	case bpf_htons(ETH_P_ARP):
		return handle_arp(skb);
	default:
		return send_drop(skb, DROP_UNKNOWN_L3, &info);
	}
}

char _license[] SEC("license") = "Dual BSD/GPL";
