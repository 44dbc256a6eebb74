#!/bin/sh
# api_doc_test.sh — docs/API.md kept in step with include/convnet.h: its index is the one
# scripts/api_index.sh makes from the header, it names every function the header declares (the
# preprocessor's view: comments gone), and every C example on the page compiles against the
# header with the warnings as errors. Run by CTest from the source folder.
T=$(mktemp -d "${TMPDIR:-/tmp}/cn_apidoc.XXXXXX") || exit 1
. "$(dirname "$0")/check.sh"
check "docs/API.md's index is the header's (else: scripts/api_index.sh --update docs/API.md)" \
    "scripts/api_index.sh --check docs/API.md"
cc -E -P include/convnet.h | grep -o 'cn_[a-z0-9_]*[ ]*(' | tr -d ' (' | sort -u >"$T/declared"
scripts/api_index.sh | grep -o '`cn_[a-z0-9_]*`' | tr -d '`' | sort -u >"$T/indexed"
check "the index lists the $(wc -l <"$T/declared") declared functions, no more, no less" \
    "[ \$(wc -l <'$T/declared') -gt 100 ] && cmp -s '$T/declared' '$T/indexed' || diff '$T/declared' '$T/indexed'"
{
    printf '#define _POSIX_C_SOURCE 200809L\n#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n#include "convnet.h"\n'
    awk '/^```c$/ { on = 1; n++; printf "#line %d \"docs/API.md\"\n", NR + 1; next } /^```$/ { on = 0 } on' docs/API.md
} >"$T/examples.c"
blocks=$(grep -c '^```c$' docs/API.md)
check "the $blocks C examples of docs/API.md compile against convnet.h (-Wall -Wextra -Wpedantic -Werror)" \
    "[ $blocks -ge 6 ] && cc -std=c11 -Wall -Wextra -Wpedantic -Werror -Wno-unused-function -Iinclude -fsyntax-only '$T/examples.c'"
finish
