/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * policy_log.h - policy verdict notifications (EVENT_TYPE_POLICY_VERDICT).
 *
 * Written where a direction's policy is decided for a local endpoint, with
 * upstream's semantics (bpf/lib/policy_log.h, monitor PolicyVerdictNotify):
 *   - only for directions the endpoint enforces (upstream's per-endpoint
 *     log filter has a bit exactly for the enforced directions);
 *   - denies always, allows for the first packet of a connection (CT_NEW);
 *     at monitor aggregation "none" allows of every judged packet too.
 *     Replies and related packets are never judged, so never reported.
 *
 * The record is the common 176-byte one; the verdict lives in header fields
 * that mean something else for other types (events.h, "policy verdicts").
 */
#pragma once

#include "config.h"
#include "conntrack.h"
#include "events.h"
#include "policy.h"

/* How an allow or deny matched: upstream's PolicyMatchType numbers. */
enum policy_match {
	POLICY_MATCH_NONE = 0,		/* nothing matched (default deny) */
	POLICY_MATCH_L3_ONLY = 1,	/* identity, any protocol */
	POLICY_MATCH_L3_L4 = 2,		/* identity + protocol + port */
	POLICY_MATCH_L4_ONLY = 3,	/* any identity + protocol + port */
	POLICY_MATCH_ALL = 4,		/* any identity, any protocol */
	POLICY_MATCH_L3_PROTO = 5,	/* identity + protocol, any port */
	POLICY_MATCH_PROTO_ONLY = 6,	/* any identity + protocol, any port */
};

/* L4 specificity of the entry `found` by a lookup of (identity, pl):
 * 0 any protocol, 1 any port of the protocol, 2 a port (range). The trie
 * does not say which prefix matched, so shorter lookups tell: if one at a
 * shorter prefix finds the same element, that is the prefix it holds. */
static __always_inline int policy_l4_level(__u16 endpoint_id, __u8 dir,
					   __u32 identity,
					   const struct policy_l4 *pl,
					   const struct policy_entry *found)
{
	if (policy_lookup4_at(endpoint_id, dir, identity, pl,
			      POLICY_PREFIX_ANY_PROTO) == found)
		return 0;
	if (!pl->port_known)
		return 1;
	if (policy_lookup4_at(endpoint_id, dir, identity, pl,
			      POLICY_PREFIX_ANY_PORT) == found)
		return 1;
	return 2;
}

/* The match type of a verdict policy_verdict4() gave (0, DROP_POLICY_DENY
 * or DROP_POLICY): the deny entry that matched, else the allow entry that
 * is most specific on L4 (an identity's entry wins a tie), as upstream
 * ranks L3-L4 > L4-only > L3-only > all. */
static __always_inline __u8 policy_match_type4(const struct endpoint_info *ep,
					       __u8 dir, __u32 remote,
					       const struct policy_l4 *pl,
					       int verdict)
{
	struct policy_entry *by_identity, *any_identity;
	int by_level = -1, any_level = -1;

	if (verdict == DROP_POLICY)
		return POLICY_MATCH_NONE;
	by_identity = policy_lookup4(ep->lxc_id, dir, remote, pl);
	any_identity = policy_lookup4(ep->lxc_id, dir, 0, pl);
	if (verdict == DROP_POLICY_DENY) {
		/* Report the deny, not an allow it overrode. */
		if (by_identity && (by_identity->flags & POLICY_F_DENY))
			any_identity = NULL;
		else
			by_identity = NULL;
	}
	if (by_identity)
		by_level = policy_l4_level(ep->lxc_id, dir, remote, pl,
					   by_identity);
	if (any_identity)
		any_level = policy_l4_level(ep->lxc_id, dir, 0, pl,
					    any_identity);
	if (by_level >= 0 && by_level >= any_level)
		return by_level == 2 ? POLICY_MATCH_L3_L4 :
		       by_level == 1 ? POLICY_MATCH_L3_PROTO :
				       POLICY_MATCH_L3_ONLY;
	if (any_level >= 0)
		return any_level == 2 ? POLICY_MATCH_L4_ONLY :
		       any_level == 1 ? POLICY_MATCH_PROTO_ONLY :
					POLICY_MATCH_ALL;
	return POLICY_MATCH_NONE;
}

/*
 * Report the verdict `verdict` (0 allow, or the policy drop reason) of
 * endpoint `ep`'s policy in direction `dir` for a packet in conntrack state
 * `ct` of that view. `base` carries the packet's identities and endpoints.
 */
static __always_inline void send_policy_verdict(struct __sk_buff *skb,
						const struct node_config *cfg,
						const struct endpoint_info *ep,
						__u8 dir, __u32 remote,
						const struct policy_l4 *pl,
						int verdict, __u8 ct,
						const struct event_info *base)
{
	__u16 enforced = dir == DIR_INGRESS ? ENDPOINT_F_POLICY_INGRESS
					    : ENDPOINT_F_POLICY_EGRESS;
	struct event_info info = *base;
	__u8 match;

	if (!(ep->flags & enforced))
		return;
	if (verdict == 0 && ct != CT_NEW &&
	    cfg->monitor_aggregation != MONITOR_AGG_NONE)
		return;

	match = policy_match_type4(ep, dir, remote, pl, verdict);
	info.source = ep->lxc_id;
	info.reason = (__u8)verdict;
	info.flags = (dir & EVENT_F_DIR_MASK) |
		     ((match << EVENT_F_MATCH_SHIFT) & EVENT_F_MATCH_MASK);
	info.orig_ip4 = 0;
	info.line = pl->port_known ? bpf_ntohs(pl->dport) : 0;
	info.file = pl->proto;
	event_emit(skb, EVENT_TYPE_POLICY_VERDICT, 0, &info);
}
