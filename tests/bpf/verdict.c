// SPDX-License-Identifier: GPL-2.0
/*
 * Test program whose verdict depends on the packet: IPv4 packets from a denied prefix (LPM trie)
 * or to TCP port 8080 are dropped, everything else passes. Every IPv4 packet produces a record
 * in a ring buffer, so tests can read back what the program saw.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define BLOCKED_PORT 8080

struct prefix_key {
	__u32 prefixlen;
	__be32 addr;
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 64);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct prefix_key);
	__type(value, __u32);
} denied_sources SEC(".maps");

struct verdict_event {
	__be32 saddr;
	__be32 daddr;
	__u8 protocol;
	__u8 dropped;
	__be16 dport;
	__u32 len;
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} events SEC(".maps");

SEC("tc")
int verdict(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	struct prefix_key source = { .prefixlen = 32 };
	struct verdict_event *event;
	__be16 dport = 0;
	int drop;

	if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	if (ip->protocol == IPPROTO_TCP && ip->ihl == 5) {
		struct tcphdr *tcp = (void *)(ip + 1);

		if ((void *)(tcp + 1) > data_end)
			return TC_ACT_OK;
		dport = tcp->dest;
	}
	source.addr = ip->saddr;
	drop = bpf_map_lookup_elem(&denied_sources, &source) != NULL || dport == bpf_htons(BLOCKED_PORT);

	event = bpf_ringbuf_reserve(&events, sizeof(*event), 0);
	if (event) {
		event->saddr = ip->saddr;
		event->daddr = ip->daddr;
		event->protocol = ip->protocol;
		event->dropped = drop;
		event->dport = dport;
		event->len = skb->len;
		bpf_ringbuf_submit(event, 0);
	}
	return drop ? TC_ACT_SHOT : TC_ACT_OK;
}

char _license[] SEC("license") = "GPL";
