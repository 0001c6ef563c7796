// SPDX-License-Identifier: GPL-2.0
/*
 * Test program for the libbpf layer: tc programs that count packets and bytes per direction,
 * plus maps of the kinds the datapath uses (array, per-CPU, LPM trie, hash), one of them pinned
 * by name so tests can check that a second load reuses it.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

enum direction { DIR_INGRESS, DIR_EGRESS, DIR_CGROUP };

struct traffic {
	__u64 packets;
	__u64 bytes;
};

/* Pinned by name: a second object with the same pin root shares it. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 3);
	__type(key, __u32);
	__type(value, struct traffic);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} traffic SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 3);
	__type(key, __u32);
	__type(value, __u64);
} packets_per_cpu SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, struct traffic);
} traffic_per_cpu SEC(".maps");

struct prefix_key {
	__u32 prefixlen;
	__u8 addr[4];
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 64);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct prefix_key);
	__type(value, __u32);
} prefixes SEC(".maps");

/* Same layout as the datapath's endpoint map: padding inside and at the end. */
struct endpoint_key {
	__be32 ip;
};

struct endpoint_info {
	__u32 ifindex;
	__u16 lxc_id;
	__u16 flags;
	__u8 mac[6];
	__u8 node_mac[6];
	__u32 sec_id;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, struct endpoint_key);
	__type(value, struct endpoint_info);
} endpoints SEC(".maps");

static __always_inline void count(__u32 direction, __u32 len)
{
	struct traffic *total = bpf_map_lookup_elem(&traffic, &direction);
	__u64 *per_cpu = bpf_map_lookup_elem(&packets_per_cpu, &direction);

	if (total) {
		__sync_fetch_and_add(&total->packets, 1);
		__sync_fetch_and_add(&total->bytes, len);
	}
	if (per_cpu)
		*per_cpu += 1;
}

SEC("tc")
int count_ingress(struct __sk_buff *skb)
{
	count(DIR_INGRESS, skb->len);
	return TC_ACT_OK;
}

SEC("tc")
int count_egress(struct __sk_buff *skb)
{
	count(DIR_EGRESS, skb->len);
	return TC_ACT_OK;
}

SEC("cgroup_skb/egress")
int count_cgroup_egress(struct __sk_buff *skb)
{
	count(DIR_CGROUP, skb->len);
	return 1; /* allow */
}

char _license[] SEC("license") = "GPL";
