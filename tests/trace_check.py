#!/usr/bin/python3
"""trace_check.py — recomputes every worked line of `convnet trace` from its printed operands.

A worked line reads "NAME = EXPRESSION = VALUE" (a note in parentheses may follow the value).
EXPRESSION uses the printed numbers, + - * /, ^ (power), e^(...), log, max, min, sqrt, tanh and
[a > b] (1 when true); each is evaluated here in double precision and compared with VALUE. The
operands are printed to 6 significant digits, so the tolerance is relative to the size of the
terms. Prints the count and any line that does not recompute; exits 1 on a failure, or when
fewer than MIN lines (argv[1], default 1) were worked.
"""
import math
import re
import sys

ALLOWED = {"exp": math.exp, "log": math.log, "tanh": math.tanh, "max": max, "min": min, "sqrt": math.sqrt}
NUMBER = re.compile(r"(?<![\w.])(\d+\.?\d*(?:[eE][-+]?\d+)?)")


def to_python(expr):
    expr = expr.replace("e^(", "exp(").replace("^", "**")
    return expr.replace("[", "(").replace("]", ")")


def evaluate(expr):
    names = set(re.findall(r"[A-Za-z_]\w*", re.sub(r"\d[eE][-+]?\d", "", expr)))
    if not names <= set(ALLOWED):
        return None
    return eval(expr, {"__builtins__": {}}, ALLOWED)


def main():
    want_min = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    checked, bad = 0, 0
    for line in sys.stdin:
        parts = line.rstrip("\n").split(" = ")
        if len(parts) < 3:
            continue
        m = re.match(r"\s*(-?[\d.]+(?:e[-+]?\d+)?|-?inf|nan)\b", parts[-1])
        if not m:
            continue
        try:
            value = float(m.group(1))
            expr = to_python(parts[-2])
            got = evaluate(expr)
            if got is None:
                continue
            # the size of the terms: the same expression with every number made positive
            try:
                scale = abs(evaluate(expr.replace("-", "+")))
            except (ArithmeticError, ValueError):
                scale = abs(value)
        except (SyntaxError, ArithmeticError, ValueError, TypeError):
            continue
        checked += 1
        if not abs(float(got) - value) <= 2e-5 * (1.0 + abs(value) + scale):
            bad += 1
            print("does not recompute (got %.9g): %s" % (got, line.strip()))
    print("%d worked lines recomputed, %d wrong" % (checked, bad))
    sys.exit(1 if bad or checked < want_min else 0)


if __name__ == "__main__":
    main()
