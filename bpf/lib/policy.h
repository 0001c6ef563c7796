/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * policy.h - policy verdicts (stub).
 *
 * The datapath asks two questions, only for packets that are not replies or
 * related errors of a tracked connection:
 *   - may endpoint `src` send this packet to `dst_identity`?  (egress)
 *   - may endpoint `dst` receive it from `src_identity`?        (ingress)
 * A verdict >= 0 allows (later: a proxy port), < 0 denies with
 * DROP_POLICY. Both allow everything until cilium_policy exists.
 */
#pragma once

#include "maps.h"

#define POLICY_ALLOW	0
#define POLICY_DENY	(-1)

static __always_inline int policy_can_egress4(const struct endpoint_info *src,
					      const struct ct4_key *tuple,
					      __u32 dst_identity)
{
	return POLICY_ALLOW;
}

static __always_inline int policy_can_ingress4(const struct endpoint_info *dst,
					       const struct ct4_key *tuple,
					       __u32 src_identity)
{
	return POLICY_ALLOW;
}
