#!/usr/bin/env sh
# Print the path of a Python >= 3.12 interpreter: PATH first, then pyenv's versions.
# Exit 1 with a clear message when there is none.
ok() { "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1; }

for name in python3 python3.12 python3.13 python3.14 python; do
    p=$(command -v "$name" 2>/dev/null) || continue
    if ok "$p"; then echo "$p"; exit 0; fi
done

root=${PYENV_ROOT:-}
[ -z "$root" ] && command -v pyenv >/dev/null 2>&1 && root=$(pyenv root 2>/dev/null)
[ -z "$root" ] && root="$HOME/.pyenv"
for p in $(ls -d "$root"/versions/3.1[2-9]*/bin/python3 "$root"/versions/3.[2-9][0-9]*/bin/python3 2>/dev/null | sort -t. -k2,2n); do
    if ok "$p"; then echo "$p"; exit 0; fi
done

echo "find-python: no Python >= 3.12 on PATH or under $root/versions; install one (e.g. 'pyenv install 3.12')" >&2
exit 1
