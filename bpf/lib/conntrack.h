/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * conntrack.h - IPv4 connection tracking in cilium_ct4_global.
 *
 * Views. Conntrack is kept per endpoint view: a packet leaving an endpoint
 * is looked up in its CT_EGRESS view, a packet delivered to an endpoint in
 * its CT_INGRESS view. An entry is keyed by the tuple of the packet that
 * opened the connection and flagged with the direction of that packet in
 * the view that created it:
 *
 *   CT_KEY_F_OUT  opened by the endpoint (created in its egress view)
 *   CT_KEY_F_IN   opened towards the endpoint (created in its ingress view)
 *
 * So in the egress view a packet is ESTABLISHED if {tuple, OUT} exists and a
 * REPLY if {reversed tuple, IN} exists; the ingress view mirrors this. A
 * pod-to-pod connection on one node has two entries, one per endpoint, like
 * upstream's egress entry at the source plus ingress entry at the
 * destination; this keeps each endpoint's policy state independent.
 *
 * Lifetimes follow upstream: TCP established 21600 s, TCP before the
 * handshake completes 60 s, TCP closing (FIN both ways or RST) 10 s, other
 * protocols 60 s. Expired entries read as missing; LRU eviction and the
 * agent's GC reclaim them.
 */
#pragma once

#include "maps.h"
#include "l4.h"
#include "trace.h"

enum ct_status {
	CT_NEW = 0,
	CT_ESTABLISHED = 1,
	CT_REPLY = 2,
	CT_RELATED = 3,
};

enum ct_view {
	CT_EGRESS = 0,
	CT_INGRESS = 1,
};

/* ct4_key.flags */
#define CT_KEY_F_OUT		0x00
#define CT_KEY_F_IN		0x01

/* ct_entry.flags */
#define CT_F_TX_CLOSING		0x0001	/* FIN seen in original direction */
#define CT_F_RX_CLOSING		0x0002	/* FIN seen in reply direction */
#define CT_F_SEEN_NON_SYN	0x0004	/* handshake done (non-SYN seen) */

/* ct_entry.{tx,rx}_flags_seen: TCP flag bits plus "any packet seen". */
#define CT_SEEN_TCP_MASK	(TCP_FLAG_FIN | TCP_FLAG_SYN | TCP_FLAG_RST | \
				 TCP_FLAG_ACK)
#define CT_SEEN_ANY		0x80

#define CT_LIFETIME_TCP		(21600ULL * NSEC_PER_SEC)
#define CT_LIFETIME_SYN		(60ULL * NSEC_PER_SEC)
#define CT_LIFETIME_CLOSE	(10ULL * NSEC_PER_SEC)
#define CT_LIFETIME_NONTCP	(60ULL * NSEC_PER_SEC)

static __always_inline __u8 ct_view_fwd_flag(int view)
{
	return view == CT_EGRESS ? CT_KEY_F_OUT : CT_KEY_F_IN;
}

static __always_inline __u8 ct_view_rev_flag(int view)
{
	return view == CT_EGRESS ? CT_KEY_F_IN : CT_KEY_F_OUT;
}

static __always_inline void ct4_key_reverse(struct ct4_key *dst,
					    const struct ct4_key *src)
{
	dst->saddr = src->daddr;
	dst->daddr = src->saddr;
	dst->sport = src->dport;
	dst->dport = src->sport;
	dst->proto = src->proto;
	dst->pad = 0;
}

static __always_inline __u64 ct_lifetime(__u8 proto, __u16 flags)
{
	if (proto != IPPROTO_TCP)
		return CT_LIFETIME_NONTCP;
	if ((flags & (CT_F_TX_CLOSING | CT_F_RX_CLOSING)) ==
	    (CT_F_TX_CLOSING | CT_F_RX_CLOSING))
		return CT_LIFETIME_CLOSE;
	if (!(flags & CT_F_SEEN_NON_SYN))
		return CT_LIFETIME_SYN;
	return CT_LIFETIME_TCP;
}

/* Connection-state flags implied by one TCP packet. */
static __always_inline __u16 ct_tcp_state(__u8 tcp_flags, int reply)
{
	__u16 f = 0;

	if (tcp_flags & TCP_FLAG_RST)
		f |= CT_F_TX_CLOSING | CT_F_RX_CLOSING;
	if (tcp_flags & TCP_FLAG_FIN)
		f |= reply ? CT_F_RX_CLOSING : CT_F_TX_CLOSING;
	if (!(tcp_flags & TCP_FLAG_SYN))
		f |= CT_F_SEEN_NON_SYN;
	return f;
}

/* Which newly seen flag bits are worth a trace (TRACE_MON_*). */
static __always_inline __u8 ct_monitor(__u8 newly_seen)
{
	__u8 mon = 0;

	if (newly_seen)
		mon |= TRACE_MON_FLAGS;
	if (newly_seen & (TCP_FLAG_SYN | TCP_FLAG_FIN | TCP_FLAG_RST))
		mon |= TRACE_MON_CTRL;
	return mon;
}

/* Account one packet on an existing entry; returns TRACE_MON_* bits. */
static __always_inline __u8 ct_entry_update(struct ct_entry *e, __u8 proto,
					    __u8 tcp_flags, __u32 len,
					    int reply, __u64 now)
{
	__u8 seen_pkt = CT_SEEN_ANY, old_seen, newly;
	__u16 flags = e->flags;
	__u64 expires;

	if (proto == IPPROTO_TCP) {
		seen_pkt |= tcp_flags & CT_SEEN_TCP_MASK;
		flags |= ct_tcp_state(tcp_flags, reply);
		if (flags != e->flags)
			e->flags = flags;
	}

	if (reply) {
		__sync_fetch_and_add(&e->rx_packets, 1);
		__sync_fetch_and_add(&e->rx_bytes, len);
		old_seen = e->rx_flags_seen;
		newly = seen_pkt & ~old_seen;
		if (newly)
			e->rx_flags_seen = old_seen | seen_pkt;
	} else {
		__sync_fetch_and_add(&e->tx_packets, 1);
		__sync_fetch_and_add(&e->tx_bytes, len);
		old_seen = e->tx_flags_seen;
		newly = seen_pkt & ~old_seen;
		if (newly)
			e->tx_flags_seen = old_seen | seen_pkt;
	}

	/* Refresh the deadline at most once a second per entry, or at once
	 * when it shrinks (closing), to keep cache-line writes rare. */
	expires = now + ct_lifetime(proto, flags);
	if (expires < e->expires || expires > e->expires + NSEC_PER_SEC)
		e->expires = expires;

	return ct_monitor(newly);
}

/*
 * Look a packet up in one view and account it. `tuple` is the packet's own
 * tuple (flags ignored). Returns CT_NEW, CT_ESTABLISHED or CT_REPLY; *mon
 * gets the TRACE_MON_* bits (TRACE_MON_NEW for CT_NEW).
 *
 * A SYN (without ACK) on a closing entry in the original direction reopens
 * the connection: it is reported as CT_NEW so policy runs again and
 * ct4_create() overwrites the old entry.
 */
static __always_inline int ct4_lookup(const struct ct4_key *tuple, int view,
				      __u8 tcp_flags, __u32 len, __u8 *mon)
{
	struct ct4_key key = *tuple;
	struct ct_entry *e;
	__u64 now = ktime_now();

	key.flags = ct_view_fwd_flag(view);
	key.pad = 0;
	e = bpf_map_lookup_elem(&cilium_ct4_global, &key);
	if (e && e->expires > now) {
		if (tuple->proto == IPPROTO_TCP &&
		    (tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) == TCP_FLAG_SYN &&
		    (e->flags & (CT_F_TX_CLOSING | CT_F_RX_CLOSING)))
			goto new;
		*mon = ct_entry_update(e, tuple->proto, tcp_flags, len, 0, now);
		return CT_ESTABLISHED;
	}

	ct4_key_reverse(&key, tuple);
	key.flags = ct_view_rev_flag(view);
	e = bpf_map_lookup_elem(&cilium_ct4_global, &key);
	if (e && e->expires > now) {
		*mon = ct_entry_update(e, tuple->proto, tcp_flags, len, 1, now);
		return CT_REPLY;
	}
new:
	*mon = TRACE_MON_NEW;
	return CT_NEW;
}

/*
 * An ICMP error is RELATED if the packet it quotes belongs to a tracked
 * connection of this view, in either direction. Nothing is accounted.
 * Returns CT_RELATED or CT_NEW.
 */
static __always_inline int ct4_lookup_related(const struct icmp_inner *in,
					      int view)
{
	struct ct4_key key = {
		.saddr = in->saddr, .daddr = in->daddr,
		.sport = in->sport, .dport = in->dport,
		.proto = in->proto,
	};
	struct ct4_key rkey;
	struct ct_entry *e;
	__u64 now = ktime_now();

	/* The quoted packet was sent by the peer that opened the conn ... */
	key.flags = ct_view_rev_flag(view);
	e = bpf_map_lookup_elem(&cilium_ct4_global, &key);
	if (e && e->expires > now)
		return CT_RELATED;

	/* ... or it was a reply of a connection opened the other way. */
	ct4_key_reverse(&rkey, &key);
	rkey.flags = ct_view_fwd_flag(view);
	e = bpf_map_lookup_elem(&cilium_ct4_global, &rkey);
	if (e && e->expires > now)
		return CT_RELATED;
	return CT_NEW;
}

/* Create (or overwrite) the entry for a new connection in a view. */
static __always_inline int ct4_create(const struct ct4_key *tuple, int view,
				      __u8 tcp_flags, __u32 len,
				      __u32 src_sec_id)
{
	struct ct4_key key = *tuple;
	__u64 now = ktime_now();
	struct ct_entry e = {
		.tx_packets = 1,
		.tx_bytes = len,
		.created = (__u32)(now / NSEC_PER_SEC),
		.tx_flags_seen = CT_SEEN_ANY,
		.src_sec_id = src_sec_id,
	};

	if (tuple->proto == IPPROTO_TCP) {
		e.tx_flags_seen |= tcp_flags & CT_SEEN_TCP_MASK;
		e.flags = ct_tcp_state(tcp_flags, 0);
	}
	e.expires = now + ct_lifetime(tuple->proto, e.flags);

	key.flags = ct_view_fwd_flag(view);
	key.pad = 0;
	return bpf_map_update_elem(&cilium_ct4_global, &key, &e, BPF_ANY);
}

static __always_inline __u8 ct_trace_reason(int status)
{
	return (__u8)status;	/* TRACE_REASON_* mirrors enum ct_status */
}
