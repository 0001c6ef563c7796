/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* endpoint.h - local endpoint lookups (cilium_lxc) and identity hints. */
#pragma once

#include "maps.h"

static __always_inline struct endpoint_info *lookup_ip4_endpoint(__be32 ip4)
{
	struct endpoint_key key = { .ip4 = ip4 };

	return bpf_map_lookup_elem(&cilium_lxc, &key);
}

/*
 * Security identity of a non-local address, until cilium_ipcache exists:
 * the node's own addresses are "host", anything outside the cluster CIDR is
 * "world", other cluster addresses are unknown (0).
 */
static __always_inline __u32 ipv4_remote_identity(const struct node_config *cfg,
						  __be32 addr)
{
	if (addr == cfg->host_ip4 || addr == cfg->node_ip4)
		return IDENTITY_HOST;
	if (ipv4_in_net(addr, cfg->cluster_cidr4, cfg->cluster_cidr4_mask) ||
	    ipv4_in_net(addr, cfg->pod_cidr4, cfg->pod_cidr4_mask))
		return IDENTITY_UNKNOWN;
	return IDENTITY_WORLD;
}
