#!/usr/bin/python3
"""class_report_check.py — `convnet eval --json` (on stdin) against scikit-learn's
classification_report, computed here from the JSON's own confusion matrix with its definitions:
precision TP/(TP+FP), recall TP/(TP+FN), F1 2TP/(2TP+FP+FN), None where nothing is counted;
the macro average over the labels in y_true or y_pred with an undefined share counted as 0
(zero_division), the weighted one by support. Exit 0 when every value is within 1e-6."""
import json
import sys

d = json.load(sys.stdin)
m = d["confusion"]
k = len(m)
support = [sum(m[c]) for c in range(k)]
predicted = [sum(m[p][c] for p in range(k)) for c in range(k)]
tp = [m[c][c] for c in range(k)]
bad = []


def near(got, want, what):
    if (got is None) != (want is None) or (want is not None and abs(got - want) > 1e-6):
        bad.append(f"{what}: {got} against {want}")


rows = []
for c in range(k):
    p = tp[c] / predicted[c] if predicted[c] else None
    r = tp[c] / support[c] if support[c] else None
    f = 2 * tp[c] / (support[c] + predicted[c]) if support[c] + predicted[c] else None
    rows.append((p, r, f))
    got = d["per_class"][c]
    for key, want in zip(("precision", "recall", "f1"), (p, r, f)):
        near(got[key], want, f"class {c} {key}")
    near(got["predicted"], predicted[c], f"class {c} predicted")
present = [c for c in range(k) if support[c] or predicted[c]]
total = sum(support)
for q, key in enumerate(("precision", "recall", "f1")):
    near(d["macro_avg"][key], sum((rows[c][q] or 0) for c in present) / len(present), f"macro {key}")
    near(d["weighted_avg"][key], sum((rows[c][q] or 0) * support[c] for c in range(k)) / total, f"weighted {key}")
near(d["weighted_avg"]["recall"], d["accuracy"], "weighted recall against the accuracy")
print("\n".join(bad) if bad else f"{k} classes, {len(present)} present: as scikit-learn's definitions")
sys.exit(1 if bad else 0)
