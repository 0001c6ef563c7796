/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* endpoint.h - local endpoint lookups (cilium_lxc) and remote identities
 * (cilium_ipcache). */
#pragma once

#include "maps.h"

static __always_inline struct endpoint_info *lookup_ip4_endpoint(__be32 ip4)
{
	struct endpoint_key key = { .ip4 = ip4 };

	return bpf_map_lookup_elem(&cilium_lxc, &key);
}

/* The longest ipcache prefix holding addr, or NULL. */
static __always_inline struct remote_endpoint_info *ipcache_lookup4(__be32 addr)
{
	struct ipcache_key key = { .prefixlen = 32, .ip4 = addr };

	return bpf_map_lookup_elem(&cilium_ipcache, &key);
}

/*
 * Security identity of an address that is not a local endpoint: what the
 * agent wrote into cilium_ipcache (HOST for the node's own addresses, the
 * identities of remote endpoints and of CIDRs used by policy), WORLD when
 * no prefix holds it.
 */
static __always_inline __u32 ipv4_remote_identity(__be32 addr)
{
	struct remote_endpoint_info *info = ipcache_lookup4(addr);

	return info ? info->sec_identity : IDENTITY_WORLD;
}
