/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * trace.h - trace (forwarding) notifications, aggregated per node config.
 *
 * Observation points and reasons use upstream's numbers (TRACE_TO_LXC = 0,
 * ..., trace reasons = conntrack states) so Hubble can map them to
 * TraceObservationPoint and is_reply directly.
 */
#pragma once

#include "config.h"
#include "events.h"

enum trace_point {
	TRACE_TO_LXC = 0,
	TRACE_TO_PROXY = 1,
	TRACE_TO_HOST = 2,
	TRACE_TO_STACK = 3,
	TRACE_TO_OVERLAY = 4,
	TRACE_FROM_LXC = 5,
	TRACE_FROM_PROXY = 6,
	TRACE_FROM_HOST = 7,
	TRACE_FROM_STACK = 8,
	TRACE_FROM_OVERLAY = 9,
	TRACE_FROM_NETWORK = 10,
	TRACE_TO_NETWORK = 11,
};

/* event_hdr.reason for traces: the conntrack verdict of the packet. */
enum trace_reason {
	TRACE_REASON_POLICY = 0,	/* CT_NEW: first packet, policy applied */
	TRACE_REASON_CT_ESTABLISHED = 1,
	TRACE_REASON_CT_REPLY = 2,
	TRACE_REASON_CT_RELATED = 3,
	TRACE_REASON_UNKNOWN = 5,	/* no conntrack at this point */
};

/* What conntrack says is worth reporting about a packet (ct "monitor"). */
#define TRACE_MON_NEW		0x01	/* new connection / new NAT mapping */
#define TRACE_MON_FLAGS		0x02	/* a TCP flag (or first packet) newly
					 * seen in this direction */
#define TRACE_MON_CTRL		0x04	/* SYN, FIN or RST newly seen */

static __always_inline int trace_is_receive(__u8 point)
{
	return point >= TRACE_FROM_LXC && point <= TRACE_FROM_NETWORK;
}

/* Decide whether a trace at `point` with ct monitor bits `mon` is written
 * at the node's aggregation level. */
static __always_inline int trace_wanted(const struct node_config *cfg,
					__u8 point, __u8 mon)
{
	__u8 level = cfg->monitor_aggregation;

	if (level == MONITOR_AGG_NONE)
		return 1;
	if (trace_is_receive(point))
		return 0;
	if (level == MONITOR_AGG_LOW)
		return 1;
	if (level == MONITOR_AGG_MEDIUM)
		return mon & (TRACE_MON_NEW | TRACE_MON_FLAGS);
	return mon & (TRACE_MON_NEW | TRACE_MON_CTRL);
}

static __always_inline void send_trace(struct __sk_buff *skb,
				       const struct node_config *cfg,
				       __u8 point, __u8 mon,
				       const struct event_info *info)
{
	if (trace_wanted(cfg, point, mon))
		event_emit(skb, EVENT_TYPE_TRACE, point, info);
}
