#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# layering_test SRC: the folder layout is the trust boundary (STYLE.md §2.1). Code outside the
# enclave (src/host, src/client, src/cli, src/control) never includes enclave code; enclave code
# and the shared libraries never include host, client or CLI code. src/local is the one
# documented exception: local-provider glue that runs both halves in one process for tests;
# unit tests (*_test.cc) may also wire both sides together. Enclave code may include the client
# library (src/client, the verifying side, which holds no host code): an enclave that talks to
# another enclave (a volume to its witnesses, docs/witness.md) is that enclave's client.
set -uo pipefail
src=${1:?src dir}
status=0
violations() {  # violations PATTERN DIRS...: prints offending include lines
  local pattern=$1; shift
  for dir in "$@"; do
    [ -d "$src/$dir" ] || continue
    grep -rnE "^#include \"($pattern)/" "$src/$dir" --include='*.h' --include='*.cc' \
      --exclude='*_test.cc' || true
  done
}
outside=$(violations enclave host client cli control)
if [ -n "$outside" ]; then
  echo "FAIL: code outside the enclave includes enclave code:"; echo "$outside"; status=1
fi
inside=$(violations 'host|cli|control|local' enclave; violations 'host|client|cli|control|local' lib)
if [ -n "$inside" ]; then
  echo "FAIL: enclave or library code includes host, client or CLI code:"; echo "$inside"; status=1
fi
client=$(violations 'host|cli|control|local' client)
if [ -n "$client" ]; then
  echo "FAIL: client code includes host or CLI code:"; echo "$client"; status=1
fi
[ "$status" -eq 0 ] && echo "layering: ok (src/enclave is reached only from src/local)"
exit "$status"
