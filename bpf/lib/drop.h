/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * drop.h - drop reasons and drop notification.
 *
 * Reason numbers are upstream's (api/v1/flow/flow.proto DropReason), which
 * Hubble shows by number. Every drop bumps cilium_metrics {reason, dir} and
 * always writes a DROP record to the ring buffer (if there is room).
 * Only the reasons this datapath emits are listed.
 */
#pragma once

#include "events.h"
#include "metrics.h"

enum drop_reason {
	DROP_INVALID_SIP = 132,			/* INVALID_SOURCE_IP */
	DROP_POLICY = 133,			/* POLICY_DENIED */
	DROP_INVALID = 134,			/* INVALID_PACKET_DROPPED */
	DROP_CT_INVALID_HDR = 135,		/* CT_TRUNCATED_OR_INVALID_HEADER */
	DROP_UNKNOWN_L3 = 139,			/* UNSUPPORTED_L3_PROTOCOL */
	DROP_WRITE_ERROR = 141,			/* ERROR_WRITING_TO_PACKET */
	DROP_NO_TUNNEL_KEY = 147,		/* ERROR_RETRIEVING_TUNNEL_KEY */
	DROP_NO_LXC = 152,			/* NO_MATCHING_LOCAL_CONTAINER_FOUND */
	DROP_CSUM_L3 = 153,			/* ERROR_WHILE_CORRECTING_L3_CHECKSUM */
	DROP_CSUM_L4 = 154,			/* ERROR_WHILE_CORRECTING_L4_CHECKSUM */
	DROP_CT_CREATE_FAILED = 155,		/* CT_MAP_INSERTION_FAILED */
	DROP_NAT_NO_MAPPING = 167,		/* NO_MAPPING_FOR_NAT_MASQUERADE */
	DROP_NAT_UNSUPP_PROTO = 168,		/* UNSUPPORTED_PROTOCOL_FOR_NAT_MASQUERADE */
	DROP_INVALID_IDENTITY = 171,		/* INVALID_IDENTITY */
	DROP_POLICY_DENY = 181,			/* POLICY_DENY ("Policy denied by denylist") */
	DROP_TTL_EXCEEDED = 196,		/* TTL_EXCEEDED */
};

/*
 * Count, report and drop. `info` carries identities/endpoint ids known at
 * the point of the drop; the direction is taken from info->flags.
 * Use the send_drop() macro so the source line is recorded.
 */
static __always_inline int __send_drop(struct __sk_buff *skb, __u8 reason,
				       struct event_info *info, __u16 line,
				       __u8 file)
{
	info->line = line;
	info->file = file;
	metrics_update(reason, info->flags & EVENT_F_DIR_MASK, skb->len);
	event_emit(skb, EVENT_TYPE_DROP, reason, info);
	return TC_ACT_SHOT;
}

#define send_drop(skb, reason, info) \
	__send_drop(skb, reason, info, __LINE__, SRC_FILE)
