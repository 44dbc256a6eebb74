#!/bin/sh
# uninstall.sh MANIFEST [DESTDIR] — removes what `make install` put in place: every file CMake
# listed in MANIFEST (build/install_manifest.txt, paths without the DESTDIR), under DESTDIR when
# one is given, then convnet's own folders
# (share/convnet, lib/.../cmake/convnet) once they are empty. Folders shared with other
# software (bin, include, lib, pkgconfig) are left as they are.
set -eu
manifest=${1:?usage: scripts/uninstall.sh build/install_manifest.txt [DESTDIR]}
destdir=${2:-}
[ -f "$manifest" ] || { echo "uninstall: $manifest: nothing installed from this build" >&2; exit 1; }
n=0
while IFS= read -r f || [ -n "$f" ]; do  # the last line has no newline
    [ -n "$f" ] || continue
    f=$destdir$f
    if [ -e "$f" ] || [ -L "$f" ]; then rm -f "$f" && n=$((n + 1)); fi
    case "$f" in
    */share/convnet/*) d=${f%/share/convnet/*}/share/convnet ;;
    */cmake/convnet/*) d=${f%/cmake/convnet/*}/cmake/convnet ;;
    *) continue ;;
    esac
    # the emptied folders of convnet's own tree, deepest first
    p=$(dirname "$f")
    while [ "${#p}" -ge "${#d}" ] && rmdir "$p" 2>/dev/null; do p=$(dirname "$p"); done
done <"$manifest"
echo "uninstall: $n files removed"
