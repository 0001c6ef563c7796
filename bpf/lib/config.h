/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* config.h - node configuration (cilium_node_config) access. */
#pragma once

#include "maps.h"

/* node_config.flags */
#define NODE_F_MASQUERADE	(1U << 0)	/* IPv4 masquerade to node_ip4 */
#define NODE_F_TUNNEL		(1U << 1)	/* routing mode tunnel: encapsulate
						 * to ipcache tunnel endpoints via
						 * tunnel_ifindex */

/* node_config.monitor_aggregation: which trace events reach the ring. */
enum {
	MONITOR_AGG_NONE = 0,	/* every packet, every observation point */
	MONITOR_AGG_LOW = 1,	/* no receive-side (FROM_*) traces */
	MONITOR_AGG_MEDIUM = 2,	/* + only new conns and TCP flag changes */
	MONITOR_AGG_MAX = 3,	/* + only new conns and SYN/FIN/RST */
};

/* Masquerade port range used when snat_port_{min,max} are 0. It starts
 * above Linux's default ip_local_port_range (32768-60999) so translated
 * ports cannot collide with the node's own connections. */
#define SNAT_PORT_MIN_DEFAULT	61000
#define SNAT_PORT_MAX_DEFAULT	65535

static __always_inline struct node_config *node_config_get(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&cilium_node_config, &zero);
}
