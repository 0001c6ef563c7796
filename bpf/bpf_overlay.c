// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * bpf_overlay.c - packets arriving from other nodes through the overlay.
 *
 * cil_from_overlay runs at ingress of cilium_vxlan (collect-metadata VXLAN,
 * see lib/overlay.h), after the kernel decapsulated the packet; the tunnel
 * key's VNI is the security identity of the sending endpoint. What happens
 * next is lib/overlay_rx.h's, shared with the BPF fast path.
 */
#define SRC_FILE SRC_FILE_OVERLAY

#include "common.h"
#include "eth.h"
#include "maps.h"
#include "config.h"
#include "events.h"
#include "drop.h"
#include "overlay_rx.h"

SEC("tc")
int cil_from_overlay(struct __sk_buff *skb)
{
	struct event_info info = { .flags = DIR_INGRESS,
				   .ifindex = skb->ifindex,
				   .reason = TRACE_REASON_UNKNOWN };
	struct node_config *cfg = node_config_get();
	struct bpf_tunnel_key key = {};

	if (!cfg || eth_load_proto(skb) != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	if (bpf_skb_get_tunnel_key(skb, &key, sizeof(key), 0) < 0)
		return send_drop(skb, DROP_NO_TUNNEL_KEY, &info);
	return overlay_deliver(skb, cfg, key.tunnel_id, &info);
}

char _license[] SEC("license") = "Dual BSD/GPL";
