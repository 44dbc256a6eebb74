# check.sh — what the shell tests share, sourced after T (their scratch folder) is set:
# `check NAME CONDITION` counts and prints ok/FAIL, `finish` prints the totals and sets the status;
# KEEP=1 leaves T behind, to look into a failure.
trap '[ -n "$KEEP" ] || rm -rf "$T"' EXIT
pass=0
fail=0
check() { if eval "$2"; then pass=$((pass + 1)); echo "ok   $1"; else fail=$((fail + 1)); echo "FAIL $1"; fi; }
finish() {
    echo "$pass passed, $fail failed"
    [ "$fail" -eq 0 ]
}
