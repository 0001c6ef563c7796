/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * metrics.h - per-CPU packet/byte counters in cilium_metrics.
 *
 * Key {reason, dir}: reason 0 counts forwarded packets, a drop reason
 * (drop.h) counts drops, METRIC_EVENTS_LOST counts monitor events that did
 * not fit in the ring buffer. The agent sums the per-CPU values.
 */
#pragma once

#include "maps.h"

#define METRIC_FORWARDED	0
#define METRIC_EVENTS_LOST	127	/* ring buffer full: event not written */

static __always_inline void metrics_update(__u8 reason, __u8 dir, __u64 bytes)
{
	struct metrics_key key = { .reason = reason, .dir = dir };
	struct metrics_value *v, init = { .packets = 1, .bytes = bytes };

	v = bpf_map_lookup_elem(&cilium_metrics, &key);
	if (likely(v)) {
		/* Per-CPU slot, softirq context: plain adds are safe. */
		v->packets += 1;
		v->bytes += bytes;
		return;
	}
	bpf_map_update_elem(&cilium_metrics, &key, &init, BPF_NOEXIST);
}

static __always_inline void metrics_forward(struct __sk_buff *skb, __u8 dir)
{
	metrics_update(METRIC_FORWARDED, dir, skb->len);
}
