# SPDX-License-Identifier: Apache-2.0
# testlib.sh: the assertions the shell integration tests share. Source it after setting $work
# (a scratch directory); end the script with `finish`.
passed=0
failed=0

check() {  # check NAME CMD...: passes when CMD succeeds
  local name=$1; shift
  if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: $name" >&2; fi
}

expect() {  # expect CODE NAME -- CMD...: CMD must exit CODE; stdout/stderr land in $work/out, err
  local code=$1 name=$2; shift 3
  "$@" >"$work/out" 2>"$work/err"
  local got=$?
  if [ "$got" -ne "$code" ]; then
    echo "FAIL: $name: exit $got, want $code; stderr: $(cat "$work/err")" >&2
    failed=$((failed + 1))
    return 1
  fi
  passed=$((passed + 1))
}

finish() {  # prints the tally; the exit status says whether everything passed
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
}
