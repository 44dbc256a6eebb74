"""same_tensors.py A B — exit 0 when two safetensors files hold the same tensors, bit for bit
(names, shapes and bytes; the metadata may differ: a run's settings as typed), else 1 naming
the first difference. Used by tests/mpi_test.sh."""
import json
import struct
import sys


def tensors(path):
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    data = blob[8 + n:]
    return {k: (v["dtype"], v["shape"], data[v["data_offsets"][0]:v["data_offsets"][1]])
            for k, v in header.items() if k != "__metadata__"}


a, b = tensors(sys.argv[1]), tensors(sys.argv[2])
if a.keys() != b.keys():
    sys.exit(f"different tensors: {sorted(a.keys() ^ b.keys())}")
for k in sorted(a):
    if a[k] != b[k]:
        sys.exit(f"tensor {k} differs")
