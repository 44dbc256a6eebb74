# libpath.sh — sourced by device.sh and tta.sh on the GPU machine: LD_LIBRARY_PATH with the CUDA
# libraries where the issue's note saw them (cuBLAS 13, cuDNN 9.14, the driver's libcuda) and,
# on a machine that keeps them elsewhere (another card's image, PyTorch's wheels), the first
# folder found holding each, added after those.
export LD_LIBRARY_PATH="/usr/lib/x86_64-linux-gnu:/usr/local/cuda-13.0/targets/x86_64-linux/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
for lib in libcublas.so.13 libcudnn.so.9; do
    here=
    for d in $(echo "$LD_LIBRARY_PATH" | tr ':' ' ') /usr/local/cuda/lib64; do [ -e "$d/$lib" ] && here=$d && break; done
    [ -n "$here" ] && continue
    site=$(python3 -c 'import site; print(" ".join(site.getsitepackages()))' 2>/dev/null)
    at=$(find /usr/local /usr/lib /opt $site -maxdepth 7 -name "$lib" 2>/dev/null | head -1)
    [ -n "$at" ] && export LD_LIBRARY_PATH="$LD_LIBRARY_PATH:$(dirname "$at")" && echo "$lib: found in $(dirname "$at")"
    [ -z "$at" ] && echo "$lib: not found (the checks will say what cannot start)"
done
