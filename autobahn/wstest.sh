#!/usr/bin/env bash
# Kept in the repository beside setup.sh; `cargo xtask autobahn` runs it.
# Runs the suite's own `wstest` with the private Python 2.7 that setup.sh installed. Arguments go to wstest.
#   Server under test:  wstest.sh -m fuzzingclient -s spec.json   (spec lists "servers": [{"url": "ws://127.0.0.1:PORT/ws"}])
#   Client under test:  wstest.sh -m fuzzingserver -s spec.json   (then point the client at ws://127.0.0.1:9001)
set -euo pipefail
HOME_DIR="${AUTOBAHN_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/autobahn}"
ROOT="$HOME_DIR/py27root"; ENV="$HOME_DIR/py27env"
[ -x "$ENV/bin/wstest" ] || "$(dirname "$0")/setup.sh" >&2
exec env PYTHONHOME="$ROOT/usr" LD_LIBRARY_PATH="$ROOT/usr/lib/x86_64-linux-gnu:$ROOT/lib/x86_64-linux-gnu" \
  PYTHONPATH="$ENV/lib/python2.7/site-packages" "$ROOT/usr/bin/python2.7" "$ENV/bin/wstest" "$@"
