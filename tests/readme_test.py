#!/usr/bin/python3
"""readme_test.py — the README's worked examples, run: every `$ convnet calc ...` and
`$ convnet summary ...` line of a shell block in README.md whose files are in the repository is
run, and what it prints must be the lines the README shows under it (up to the next `$ ` line
or the block's end; a block that elides lines with `...` is skipped). Numbers the README quotes
stay the ones the code gives. Run by CTest: tests/readme_test.py /path/to/convnet"""
import os
import shlex
import subprocess
import sys

cn = sys.argv[1]
root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
lines = open(os.path.join(root, "README.md"), encoding="utf-8").read().split("\n")

examples = []  # (line number, command, expected lines)
in_block = False
for i, line in enumerate(lines):
    if line.startswith("```"):
        in_block = not in_block
        continue
    if not (in_block and (line.startswith("$ convnet calc ") or line.startswith("$ convnet summary "))):
        continue
    want = []
    for nxt in lines[i + 1:]:
        if nxt.startswith("```") or nxt.startswith("$ "):
            break
        want.append(nxt)
    while want and not want[-1]:  # the blank line between two commands
        want.pop()
    examples.append((i + 1, line[2:], want))

passed = failed = skipped = 0
for lineno, command, want in examples:
    words = shlex.split(command)
    files = [w for w in words[2:] if not w.startswith("-") and w.endswith(".cnn")]
    if "..." in want or any(not os.path.exists(os.path.join(root, f)) for f in files):
        skipped += 1
        continue
    got = subprocess.run([cn] + words[1:], cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         encoding="utf-8").stdout.rstrip("\n").split("\n")
    if got == want:
        passed += 1
        print(f"ok   README.md:{lineno}: {command[:90]}")
    else:
        failed += 1
        print(f"FAIL README.md:{lineno}: {command}")
        for k in range(max(len(got), len(want))):
            g = got[k] if k < len(got) else "<none>"
            w = want[k] if k < len(want) else "<none>"
            if g != w:
                print(f"     | line {k + 1}: README '{w}'\n     |         prints '{g}'")
                break
print(f"{passed} passed, {failed} failed ({skipped} examples elided or with files made elsewhere)")
sys.exit(1 if failed or not passed else 0)
