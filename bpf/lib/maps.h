/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * maps.h - every map of the datapath and its key/value layouts.
 *
 * The control plane (src/datapath) encodes these structs byte by byte;
 * bpf/README.md documents the same offsets. The LAYOUT_ASSERTs below make a
 * drift between the two a build failure on this side.
 *
 * All maps are pinned by name: the loader sets the pin root to
 * <bpf-root>/tc/globals, so the maps of a node outlive agent restarts and
 * the objects bpf_lxc.o and bpf_host.o share them. Sizes are defaults the
 * agent may change with bpf_map__set_max_entries() before the first load.
 */
#pragma once

#include "common.h"

/* ---- cilium_lxc: local endpoints by IPv4 address ---------------------- */

struct endpoint_key {
	__be32 ip4;
};

struct endpoint_info {
	__u32 ifindex;		/* host-side veth (lxcXXXX) */
	__u16 lxc_id;		/* endpoint id */
	__u16 flags;		/* ENDPOINT_F_* (policy enforcement) */
	__u8 mac[6];		/* pod eth0 MAC */
	__u8 node_mac[6];	/* host-side veth MAC */
	__u32 sec_identity;	/* security identity of the endpoint */
	__u32 pad;
};
LAYOUT_ASSERT(sizeof(struct endpoint_info) == 28, "endpoint_info size");
LAYOUT_ASSERT(offsetof(struct endpoint_info, node_mac) == 14, "node_mac");
LAYOUT_ASSERT(offsetof(struct endpoint_info, sec_identity) == 20, "sec_id");

/* endpoint_info.flags: which directions of the endpoint have policy
 * enforced. A direction without its bit allows everything. */
#define ENDPOINT_F_POLICY_INGRESS	(1U << 0)
#define ENDPOINT_F_POLICY_EGRESS	(1U << 1)

#define ENDPOINTS_MAP_SIZE	65535

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct endpoint_key);
	__type(value, struct endpoint_info);
	__uint(max_entries, ENDPOINTS_MAP_SIZE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cilium_lxc SEC(".maps");

/* ---- cilium_node_config: one entry describing this node --------------- */

struct node_config {
	__be32 node_ip4;		/*  0 masquerade source */
	__be32 pod_cidr4;		/*  4 this node's pod CIDR */
	__be32 pod_cidr4_mask;		/*  8 */
	__be32 cluster_cidr4;		/* 12 never masqueraded inside */
	__be32 cluster_cidr4_mask;	/* 16 */
	__be32 host_ip4;		/* 20 cilium_host address (pod GW) */
	__u32 host_ifindex;		/* 24 cilium_host */
	__u32 native_ifindex;		/* 28 native device */
	__u8 host_mac[6];		/* 32 cilium_host MAC */
	__u8 monitor_aggregation;	/* 38 MONITOR_AGG_* */
	__u8 pad0;			/* 39 */
	__u32 flags;			/* 40 NODE_F_* */
	__u16 snat_port_min;		/* 44 host order; 0 = default */
	__u16 snat_port_max;		/* 46 host order; 0 = default */
	__u32 tunnel_ifindex;		/* 48 cilium_vxlan, 0 = no overlay */
	__be16 tunnel_port;		/* 52 VXLAN UDP port; 0 = no BPF
					 * encapsulation (overlay.h) */
	__u16 pad1;			/* 54 */
	__u32 reserved[2];		/* 56 zero; room to grow in place */
};
LAYOUT_ASSERT(sizeof(struct node_config) == 64, "node_config size");
LAYOUT_ASSERT(offsetof(struct node_config, host_mac) == 32, "host_mac");
LAYOUT_ASSERT(offsetof(struct node_config, flags) == 40, "flags");
LAYOUT_ASSERT(offsetof(struct node_config, snat_port_min) == 44, "snat");
LAYOUT_ASSERT(offsetof(struct node_config, tunnel_ifindex) == 48, "tunnel");
LAYOUT_ASSERT(offsetof(struct node_config, tunnel_port) == 52, "tunnel port");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct node_config);
	__uint(max_entries, 1);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cilium_node_config SEC(".maps");

/* ---- cilium_ct4_global: IPv4 connection tracking ---------------------- */

/* Key: the tuple of the packet that opened the connection, plus the
 * direction of that packet relative to the endpoint whose view it is. */
struct ct4_key {
	__be32 saddr;		/*  0 original source */
	__be32 daddr;		/*  4 original destination */
	__be16 sport;		/*  8 port, or ICMP echo id (see l4.h) */
	__be16 dport;		/* 10 */
	__u8 proto;		/* 12 IPPROTO_* */
	__u8 flags;		/* 13 CT_KEY_F_* */
	__u16 pad;		/* 14 zero */
};
LAYOUT_ASSERT(sizeof(struct ct4_key) == 16, "ct4_key size");

struct ct_entry {
	__u64 expires;		/*  0 ktime_now() deadline (CLOCK_MONOTONIC ns) */
	__u64 tx_packets;	/*  8 original direction */
	__u64 tx_bytes;		/* 16 */
	__u64 rx_packets;	/* 24 reply direction */
	__u64 rx_bytes;		/* 32 */
	__u32 created;		/* 40 creation time, ktime seconds */
	__u8 tx_flags_seen;	/* 44 CT_SEEN_* in original direction */
	__u8 rx_flags_seen;	/* 45 CT_SEEN_* in reply direction */
	__u16 flags;		/* 46 CT_F_* */
	__u32 src_sec_id;	/* 48 identity of the original source */
	__u32 pad;		/* 52 */
};
LAYOUT_ASSERT(sizeof(struct ct_entry) == 56, "ct_entry size");

#define CT_MAP_SIZE	262144

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct ct4_key);
	__type(value, struct ct_entry);
	__uint(max_entries, CT_MAP_SIZE);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cilium_ct4_global SEC(".maps");

/* ---- cilium_snat_v4_external: masquerade translations ----------------- */

/* Key: a packet tuple as seen on the wire at the native device.
 * dir NAT_DIR_EGRESS:  {pod, remote, pod port, remote port}  -> node addr/port
 * dir NAT_DIR_INGRESS: {remote, node, remote port, nat port} -> pod addr/port
 */
struct ipv4_nat_tuple {
	__be32 saddr;		/*  0 */
	__be32 daddr;		/*  4 */
	__be16 sport;		/*  8 */
	__be16 dport;		/* 10 */
	__u8 proto;		/* 12 */
	__u8 dir;		/* 13 NAT_DIR_* */
	__u16 pad;		/* 14 zero */
};
LAYOUT_ASSERT(sizeof(struct ipv4_nat_tuple) == 16, "nat tuple size");

struct ipv4_nat_entry {
	__be32 to_addr;		/*  0 address to write (saddr out, daddr in) */
	__be16 to_port;		/*  4 port/echo id to write */
	__u16 pad;		/*  6 */
	__u64 created;		/*  8 ktime_now() */
	__u64 last_seen;	/* 16 ktime_now(), ~1 s resolution */
};
LAYOUT_ASSERT(sizeof(struct ipv4_nat_entry) == 24, "nat entry size");

#define SNAT_MAP_SIZE	262144

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct ipv4_nat_tuple);
	__type(value, struct ipv4_nat_entry);
	__uint(max_entries, SNAT_MAP_SIZE);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cilium_snat_v4_external SEC(".maps");

/* ---- cilium_snat_v4_frags: reverse SNAT of later fragments ------------ */

/* Later fragments of a reply carry no ports; the first fragment records
 * which pod address the datagram {saddr, daddr, id, proto} belongs to. */
struct ipv4_frag_key {
	__be32 saddr;		/* 0 remote */
	__be32 daddr;		/* 4 node address (before translation) */
	__be16 id;		/* 8 IP identification */
	__u8 proto;		/* 10 */
	__u8 pad;		/* 11 */
};
LAYOUT_ASSERT(sizeof(struct ipv4_frag_key) == 12, "frag key size");

struct ipv4_frag_entry {
	__be32 to_addr;		/* 0 pod address */
	__u32 pad;		/* 4 */
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct ipv4_frag_key);
	__type(value, struct ipv4_frag_entry);
	__uint(max_entries, 8192);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cilium_snat_v4_frags SEC(".maps");

/* ---- cilium_metrics: per-CPU packet/byte counters --------------------- */

struct metrics_key {
	__u8 reason;		/* 0 = forwarded, else drop reason (drop.h) */
	__u8 dir;		/* DIR_INGRESS / DIR_EGRESS */
	__u16 pad;
	__u32 pad2;
};
LAYOUT_ASSERT(sizeof(struct metrics_key) == 8, "metrics key size");

struct metrics_value {
	__u64 packets;
	__u64 bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__type(key, struct metrics_key);
	__type(value, struct metrics_value);
	__uint(max_entries, 1024);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cilium_metrics SEC(".maps");

/* ---- cilium_events: monitor ring buffer (records in events.h) --------- */

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	/* 8 MiB: ~45,000 records, 75 ms of 600,000 events/s while the agent is busy elsewhere. */
	__uint(max_entries, 1 << 23);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cilium_events SEC(".maps");

/* ---- cilium_ipcache: identity (and tunnel endpoint) of remote prefixes  */

/* LPM trie key: prefixlen counts the bits of ip4 that must match (0-32).
 * An address with no matching entry is WORLD (identity 2). */
struct ipcache_key {
	__u32 prefixlen;	/* 0 */
	__be32 ip4;		/* 4 */
};
LAYOUT_ASSERT(sizeof(struct ipcache_key) == 8, "ipcache_key size");

struct remote_endpoint_info {
	__u32 sec_identity;	/*  0 security identity of the prefix */
	__be32 tunnel_endpoint;	/*  4 node to tunnel to, 0 = none: the
				 *    overlay's routing table (no separate
				 *    tunnel map, see bpf/README.md) */
	__u8 flags;		/*  8 reserved, 0 */
	__u8 pad[3];		/*  9 */
};
LAYOUT_ASSERT(sizeof(struct remote_endpoint_info) == 12, "ipcache value size");

#define IPCACHE_MAP_SIZE	65536

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct ipcache_key);
	__type(value, struct remote_endpoint_info);
	__uint(max_entries, IPCACHE_MAP_SIZE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cilium_ipcache SEC(".maps");

/* ---- cilium_policy: L3/L4 policy of every local endpoint --------------- */

/*
 * LPM trie key. Every field after prefixlen is in network byte order, so a
 * prefix of the key bits means "these fields, most significant first":
 *
 *   POLICY_PREFIX_ANY_PROTO (64)  endpoint, direction, identity: any L4
 *   POLICY_PREFIX_ANY_PORT  (80)  ... + protocol: any port of it
 *   POLICY_PREFIX_FULL      (96)  ... + dport: one port; 80 + n for the
 *                                 ports sharing the top n bits (ranges)
 *
 * identity 0 means "any identity" (looked up separately, see policy.h).
 * For ICMP, dport holds the ICMP type.
 */
struct policy_key {
	__u32 prefixlen;	/*  0 bits of the fields below that must match */
	__be16 endpoint_id;	/*  4 local endpoint (lxc_id) */
	__u8 direction;		/*  6 DIR_INGRESS / DIR_EGRESS */
	__u8 pad0;		/*  7 zero */
	__be32 identity;	/*  8 remote identity; 0 = any identity */
	__u8 protocol;		/* 12 IPPROTO_* */
	__u8 pad1;		/* 13 zero */
	__be16 dport;		/* 14 destination port; ICMP: the type */
};
LAYOUT_ASSERT(sizeof(struct policy_key) == 16, "policy_key size");
LAYOUT_ASSERT(offsetof(struct policy_key, identity) == 8, "policy identity");
LAYOUT_ASSERT(offsetof(struct policy_key, dport) == 14, "policy dport");

#define POLICY_PREFIX_ANY_PROTO	64
#define POLICY_PREFIX_ANY_PORT	80
#define POLICY_PREFIX_FULL	96

struct policy_entry {
	__u32 flags;		/* 0 POLICY_F_* */
	__u32 pad;		/* 4 zero */
};
LAYOUT_ASSERT(sizeof(struct policy_entry) == 8, "policy_entry size");

#define POLICY_F_DENY		(1U << 0)

#define POLICY_MAP_SIZE		65536

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct policy_key);
	__type(value, struct policy_entry);
	__uint(max_entries, POLICY_MAP_SIZE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cilium_policy SEC(".maps");
