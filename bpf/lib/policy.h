/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * policy.h - identity-based L3/L4 policy verdicts (cilium_policy).
 *
 * The datapath asks, only for packets that are not replies or related
 * errors of a tracked connection (so for new AND established forward
 * traffic, which makes revoking an allow effective on the next packet):
 *   - may endpoint `src` send this packet to `dst_identity`?  (egress)
 *   - may endpoint `dst` receive it from `src_identity`?        (ingress)
 *
 * Semantics, for endpoint E, direction D, remote identity R, protocol P and
 * destination port (ICMP: type) T:
 *   1. D not enforced for E (endpoint_info.flags)       -> allow
 *   2. longest match for (E, D, R, P, T) and for (E, D, 0 = any identity,
 *      P, T) in cilium_policy
 *   3. either match is a deny entry                     -> DROP_POLICY_DENY
 *   4. else either match exists                         -> allow
 *   5. else                                             -> DROP_POLICY
 *
 * Longest-prefix match inside one identity never hides a deny because the
 * control plane guarantees that no allow entry is more specific than an
 * overlapping deny entry of the same identity (bpf/README.md).
 *
 * Packets without a known port (later fragments, protocols without ports)
 * are looked up with prefixlen POLICY_PREFIX_ANY_PORT: only entries for any
 * port of the protocol, or for any protocol, can match them.
 */
#pragma once

#include "maps.h"
#include "l4.h"
#include "drop.h"

/* The L4 part of a packet as policy sees it. */
struct policy_l4 {
	__be16 dport;		/* destination port; ICMP: bpf_htons(type) */
	__u8 proto;		/* IPPROTO_* */
	__u8 port_known;	/* 0: match only port-less entries */
};

static __always_inline void policy_l4_init(struct policy_l4 *pl, __u8 proto,
					   int l4res,
					   const struct l4_info *l4)
{
	pl->proto = proto;
	pl->dport = 0;
	pl->port_known = 0;
	if (l4res == L4_FRAGMENT || l4res == L4_TRUNCATED)
		return;
	if (proto == IPPROTO_ICMP) {
		pl->dport = bpf_htons((__u16)l4->icmp_type);
		pl->port_known = 1;
	} else if (l4res == L4_OK) {
		/* TCP, UDP, SCTP */
		pl->dport = l4->dport;
		pl->port_known = 1;
	}
}

/* Longest match for (endpoint, dir, identity, pl) among entries whose
 * prefix is at most `prefixlen` bits. */
static __always_inline struct policy_entry *
policy_lookup4_at(__u16 endpoint_id, __u8 dir, __u32 identity,
		  const struct policy_l4 *pl, __u32 prefixlen)
{
	struct policy_key key = {
		.prefixlen = prefixlen,
		.endpoint_id = bpf_htons(endpoint_id),
		.direction = dir,
		.identity = bpf_htonl(identity),
		.protocol = pl->proto,
		.dport = pl->port_known ? pl->dport : 0,
	};

	return bpf_map_lookup_elem(&cilium_policy, &key);
}

static __always_inline struct policy_entry *
policy_lookup4(__u16 endpoint_id, __u8 dir, __u32 identity,
	       const struct policy_l4 *pl)
{
	return policy_lookup4_at(endpoint_id, dir, identity, pl,
				 pl->port_known ? POLICY_PREFIX_FULL
						: POLICY_PREFIX_ANY_PORT);
}

/* 0 (allow), DROP_POLICY_DENY or DROP_POLICY for endpoint `ep` and traffic
 * in direction `dir` with the remote identity `remote`. */
static __always_inline int policy_verdict4(const struct endpoint_info *ep,
					   __u8 dir, __u32 remote,
					   const struct policy_l4 *pl)
{
	__u16 enforced = dir == DIR_INGRESS ? ENDPOINT_F_POLICY_INGRESS
					    : ENDPOINT_F_POLICY_EGRESS;
	struct policy_entry *by_identity, *any_identity;
	int found = 0;

	if (!(ep->flags & enforced))
		return 0;

	/* Flags are tested one pointer at a time: clang may otherwise OR the
	 * two pointers together, which the verifier refuses. */
	by_identity = policy_lookup4(ep->lxc_id, dir, remote, pl);
	if (by_identity) {
		if (by_identity->flags & POLICY_F_DENY)
			return DROP_POLICY_DENY;
		found = 1;
	}
	any_identity = policy_lookup4(ep->lxc_id, dir, 0, pl);
	if (any_identity) {
		if (any_identity->flags & POLICY_F_DENY)
			return DROP_POLICY_DENY;
		found = 1;
	}
	return found ? 0 : DROP_POLICY;
}

static __always_inline int policy_can_egress4(const struct endpoint_info *src,
					      const struct policy_l4 *pl,
					      __u32 dst_identity)
{
	return policy_verdict4(src, DIR_EGRESS, dst_identity, pl);
}

static __always_inline int policy_can_ingress4(const struct endpoint_info *dst,
					       const struct policy_l4 *pl,
					       __u32 src_identity)
{
	return policy_verdict4(dst, DIR_INGRESS, src_identity, pl);
}
