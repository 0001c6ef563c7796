/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * events.h - records written to the cilium_events ring buffer.
 *
 * Every record is a fixed 176 bytes: a 48-byte header followed by the first
 * len_cap (<= 128) bytes of the packet, starting at the Ethernet header.
 * Type numbers follow upstream's monitor message types so that the Hubble
 * parser can dispatch on them unchanged.
 *
 * Policy verdicts (EVENT_TYPE_POLICY_VERDICT, policy_log.h) use the same
 * header; some fields mean something else for them:
 *   subtype     0
 *   source      the local endpoint whose policy decided
 *   reason      the verdict: 0 allow, else the drop reason (133 no entry
 *               allows, 181 a deny entry matched): action deny
 *   flags       bits 0-1 direction of that endpoint's policy (1 ingress,
 *               2 egress), bits 3-5 POLICY_MATCH_*; never EVENT_F_REPLY
 *   line        destination port as policy saw it (ICMP: type), host
 *               order; 0 when the packet had none (later fragments)
 *   file        IP protocol
 *   orig_ip4    0
 * The remote identity is dst_identity on egress, src_identity on ingress.
 */
#pragma once

#include "maps.h"
#include "metrics.h"

enum {
	EVENT_TYPE_DROP = 1,		/* CILIUM_NOTIFY_DROP */
	EVENT_TYPE_TRACE = 4,		/* CILIUM_NOTIFY_TRACE */
	EVENT_TYPE_POLICY_VERDICT = 5,	/* CILIUM_NOTIFY_POLICY_VERDICT */
};

#define EVENT_VERSION		1
#define EVENT_CAPTURE_LEN	128

/* event_hdr.flags */
#define EVENT_F_DIR_MASK	0x03	/* DIR_INGRESS / DIR_EGRESS */
#define EVENT_F_REPLY		0x04	/* packet is a reply of a tracked conn */
#define EVENT_F_MATCH_MASK	0x38	/* policy verdicts: POLICY_MATCH_* << 3 */
#define EVENT_F_MATCH_SHIFT	3	/* (where upstream keeps match_type) */

struct event_hdr {
	__u8 type;		/*  0 EVENT_TYPE_* */
	__u8 subtype;		/*  1 drop reason / trace observation point */
	__u16 source;		/*  2 endpoint id the program acted for, 0 host */
	__u32 hash;		/*  4 skb hash (flow correlation) */
	__u32 len_orig;		/*  8 packet length (skb->len) */
	__u16 len_cap;		/* 12 captured bytes following the header */
	__u16 version;		/* 14 EVENT_VERSION */
	__u32 src_identity;	/* 16 */
	__u32 dst_identity;	/* 20 */
	__u16 dst_id;		/* 24 destination endpoint id, 0 if none */
	__u8 reason;		/* 26 trace: TRACE_REASON_* (conntrack state) */
	__u8 flags;		/* 27 EVENT_F_* */
	__u32 ifindex;		/* 28 interface the packet goes to / came from */
	__u64 ktime;		/* 32 bpf_ktime_get_ns() (CLOCK_MONOTONIC) */
	__be32 orig_ip4;	/* 40 address before NAT, 0 if untranslated */
	__u16 line;		/* 44 drop: source line in file */
	__u8 file;		/* 46 drop: SRC_FILE_* */
	__u8 pad;		/* 47 */
};
LAYOUT_ASSERT(sizeof(struct event_hdr) == 48, "event_hdr size");

struct event_record {
	struct event_hdr hdr;
	__u8 data[EVENT_CAPTURE_LEN];
};
LAYOUT_ASSERT(sizeof(struct event_record) == 176, "event_record size");

/* What a program knows about a packet when it reports it. */
struct event_info {
	__u32 src_identity;
	__u32 dst_identity;
	__u32 ifindex;
	__be32 orig_ip4;
	__u16 source;
	__u16 dst_id;
	__u8 reason;
	__u8 flags;
	__u16 line;
	__u8 file;
};

/*
 * Write one record. A full ring never fails the datapath: the loss is
 * counted under METRIC_EVENTS_LOST and the packet goes on.
 */
static __always_inline void event_emit(struct __sk_buff *skb, __u8 type,
				       __u8 subtype,
				       const struct event_info *info)
{
	struct event_record *ev;
	__u32 cap;

	ev = bpf_ringbuf_reserve(&cilium_events, sizeof(*ev), 0);
	if (!ev) {
		metrics_update(METRIC_EVENTS_LOST,
			       info->flags & EVENT_F_DIR_MASK, 0);
		return;
	}

	cap = skb->len;
	if (cap > EVENT_CAPTURE_LEN)
		cap = EVENT_CAPTURE_LEN;
	if (cap == 0 || bpf_skb_load_bytes(skb, 0, ev->data, cap) < 0)
		cap = 0;

	ev->hdr.type = type;
	ev->hdr.subtype = subtype;
	ev->hdr.source = info->source;
	ev->hdr.hash = bpf_get_hash_recalc(skb);
	ev->hdr.len_orig = skb->len;
	ev->hdr.len_cap = cap;
	ev->hdr.version = EVENT_VERSION;
	ev->hdr.src_identity = info->src_identity;
	ev->hdr.dst_identity = info->dst_identity;
	ev->hdr.dst_id = info->dst_id;
	ev->hdr.reason = info->reason;
	ev->hdr.flags = info->flags;
	ev->hdr.ifindex = info->ifindex;
	ev->hdr.ktime = bpf_ktime_get_ns();
	ev->hdr.orig_ip4 = info->orig_ip4;
	ev->hdr.line = info->line;
	ev->hdr.file = info->file;
	ev->hdr.pad = 0;
	bpf_ringbuf_submit(ev, 0);
}
