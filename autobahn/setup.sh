#!/usr/bin/env bash
# Kept in the repository (from the team's shared tools) so CI on a fresh machine needs nothing
# outside the checkout; `cargo xtask autobahn` runs it.
# Installs Autobahn|Testsuite (the WebSocket conformance suite, Python 2.7 only) under $AUTOBAHN_HOME
# without touching the system: Python 2.7 comes from the previous Debian release's packages, unpacked
# into a private folder, and the suite from PyPI. Idempotent: a second run returns at once.
set -euo pipefail
HOME_DIR="${AUTOBAHN_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/autobahn}"
ROOT="$HOME_DIR/py27root"; ENV="$HOME_DIR/py27env"; APT="$HOME_DIR/apt"
if [ -x "$ENV/bin/wstest" ]; then echo "autobahn: ready in $HOME_DIR"; exit 0; fi
mkdir -p "$APT/lists/partial" "$APT/cache/archives/partial" "$HOME_DIR/debs" "$HOME_DIR/pipwhl"

# The Debian mirror this machine already uses, pointed at the release that still ships python2.7.
mirror=$( { grep -shoE '^(URIs:|deb) +[a-z]+://[^ ]+/debian' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list || true; } \
  | head -n1 | awk '{print $2}')
[ -n "$mirror" ] || { echo "autobahn: no Debian mirror found in the apt sources" >&2; exit 1; }
echo "deb $mirror bullseye main" > "$APT/sources.list"
O=(-o Dir::Etc::SourceList="$APT/sources.list" -o Dir::Etc::SourceParts=/dev/null
   -o Dir::State::Lists="$APT/lists" -o Dir::Cache="$APT/cache")
apt-get "${O[@]}" update -qq
(cd "$HOME_DIR/debs" && apt-get "${O[@]}" download -qq python2.7 python2.7-minimal libpython2.7-minimal \
   libpython2.7-stdlib libpython2.7 libpython2.7-dev python2.7-dev libssl1.1 libffi7)
for d in "$HOME_DIR"/debs/*.deb; do dpkg-deb -x "$d" "$ROOT"; done

py2() { PYTHONHOME="$ROOT/usr" LD_LIBRARY_PATH="$ROOT/usr/lib/x86_64-linux-gnu:$ROOT/lib/x86_64-linux-gnu" \
        PYTHONPATH="$ENV/lib/python2.7/site-packages" "$ROOT/usr/bin/python2.7" "$@"; }
"${PYTHON3:-python3}" -m pip download -q pip==20.3.4 setuptools==44.1.1 wheel==0.34.2 --no-deps \
  --python-version 2.7 --only-binary=:all: -d "$HOME_DIR/pipwhl"
py2 "$HOME_DIR/pipwhl/pip-20.3.4-py2.py3-none-any.whl/pip" install -q --prefix "$ENV" --no-index \
  --find-links "$HOME_DIR/pipwhl" pip setuptools wheel
CFLAGS="-I$ROOT/usr/include/python2.7 -I$ROOT/usr/include" LDFLAGS="-L$ROOT/usr/lib/x86_64-linux-gnu" \
  py2 -m pip install -q --no-warn-script-location --prefix "$ENV" autobahntestsuite==25.10.1
echo "import site; site.addsitedir('$ENV/lib/python2.7/site-packages')" > "$ENV/lib/python2.7/site-packages/sitecustomize.py"
py2 "$ENV/bin/wstest" -a >/dev/null 2>&1 || true
echo "autobahn: ready in $HOME_DIR"
