/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The commands: each reads the little kernel state it needs, builds one
 * batch, and commits it as a compare-and-swap on the ruleset generation,
 * retrying from the read when anything changed meanwhile.
 */
#pragma once

#include "cni/config.hpp"
#include "cni/env.hpp"
#include "cni/error.hpp"
#include "util/expected.hpp"

namespace nftpm {

using CniResult = Expected<void, cni::Error>;

/* Publishes the attachment's mappings, replacing what it published before. */
[[nodiscard]] CniResult commandAdd(const cni::Config &cfg, const cni::Environment &env);
/* Removes what the attachment owns; succeeds when nothing is there. */
[[nodiscard]] CniResult commandDel(const cni::Config &cfg, const cni::Environment &env);
/* Compares the kernel's state with what ADD would have built. */
[[nodiscard]] CniResult commandCheck(const cni::Config &cfg, const cni::Environment &env);
/* Removes this network's attachments that are not in cni.dev/valid-attachments. */
[[nodiscard]] CniResult commandGc(const cni::Config &cfg);
/* Success when nftables can be used. */
[[nodiscard]] CniResult commandStatus();

} /* namespace nftpm */
