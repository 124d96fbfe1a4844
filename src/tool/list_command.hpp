/* SPDX-License-Identifier: Apache-2.0 */
/* The command line for people: nft-portmap list | --help | --version. */
#pragma once

namespace nftpm {

/* Exit status: 0 ok, 1 failure, 2 usage error. */
int runTool(int argc, char **argv);

} /* namespace nftpm */
