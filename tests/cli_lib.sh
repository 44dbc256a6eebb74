# cli_lib.sh — the checks the command-line tests share, sourced after setting CN, PY and T:
# ok/bad count and print, run captures a command (stdout -> $T/out, stderr -> $T/err, status ->
# $rc), expect_* check what it printed. The caller ends with: echo "$pass passed, $fail failed".

pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() {
    fail=$((fail + 1))
    echo "FAIL $1"
    if [ -n "$2" ]; then printf '%s\n' "$2" | head -n 20 | sed 's/^/     | /'; fi
}

# run CMD...: stdout -> $T/out, stderr -> $T/err, exit status -> $rc
run() {
    "$@" >"$T/out" 2>"$T/err"
    rc=$?
}
shown() { printf 'exit %s\n--- stdout\n%s\n--- stderr\n%s' "$rc" "$(head -c 2000 "$T/out")" "$(head -c 2000 "$T/err")"; }

# expect_rc NAME WANT
expect_rc() {
    if [ "$rc" -eq "$2" ]; then ok "$1: exit $2"; else bad "$1: exit $rc, expected $2" "$(shown)"; fi
}
# expect_line NAME out|err TEXT: a line that is exactly TEXT
expect_line() {
    if grep -qxF -- "$3" "$T/$2"; then ok "$1"; else bad "$1: no line '$3' on std$2" "$(shown)"; fi
}
# expect_formula NAME TEXT: a stdout line that, without its indentation, is TEXT or starts
# with TEXT and a space (a note may follow a formula)
expect_formula() {
    if awk -v want="$2" '{ sub(/^[ \t]+/, ""); sub(/[ \t]+$/, "");
                           if ($0 == want || index($0, want " ") == 1) found = 1 }
                         END { exit !found }' "$T/out"; then
        ok "$1"
    else
        bad "$1: no line '$2'" "$(shown)"
    fi
}
# expect_row NAME TEXT: a stdout line whose blank-separated words are TEXT's (a table row)
expect_row() {
    if awk -v want="$2" '{ $1 = $1; if ($0 == want) found = 1 } END { exit !found }' "$T/out"; then
        ok "$1"
    else
        bad "$1: no row '$2'" "$(shown)"
    fi
}
# expect_text NAME out|err TEXT: TEXT somewhere in the stream
expect_text() {
    if grep -qF -- "$3" "$T/$2"; then ok "$1"; else bad "$1: no '$3' on std$2" "$(shown)"; fi
}
expect_empty() {
    if [ ! -s "$T/$2" ]; then ok "$1"; else bad "$1: std$2 is not empty" "$(shown)"; fi
}
# expect_json NAME PYTHON-EXPR: stdout parses as JSON (as d) and EXPR holds
expect_json() {
    if "$PY" -c "import json, math, sys
d = json.load(sys.stdin)
sys.exit(0 if ($2) else 3)" <"$T/out" >"$T/py" 2>&1; then
        ok "$1"
    else
        bad "$1: JSON does not parse or does not satisfy: $2" "$(cat "$T/py"; shown)"
    fi
}

