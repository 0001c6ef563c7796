// SPDX-License-Identifier: GPL-2.0
/* Compiles, but the verifier must reject it: a hash map lookup result is used without a NULL check. */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} hits SEC(".maps");

SEC("tc")
int unchecked_lookup(struct __sk_buff *skb)
{
	__u32 key = 0;
	__u64 *value = bpf_map_lookup_elem(&hits, &key);

	*value += 1;
	return TC_ACT_OK;
}

char _license[] SEC("license") = "GPL";
