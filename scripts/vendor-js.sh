#!/usr/bin/env bash
# Vendors the console's JavaScript libraries as plain ES modules: no build
# step, no CDN. Their bare imports ("preact", "preact/hooks", ...) become
# relative ones, so a browser loads them as they are. Run it to change a
# version; the files it writes are committed (web/static/console/vendor).
set -euo pipefail
cd "$(dirname "$0")/.."
PREACT=10.29.8 HTM=3.1.1 SIGNALS=2.11.4 SIGNALS_CORE=1.14.5
out=web/static/console/vendor
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent preact@$PREACT htm@$HTM @preact/signals@$SIGNALS @preact/signals-core@$SIGNALS_CORE >/dev/null)
for p in preact-$PREACT htm-$HTM preact-signals-$SIGNALS preact-signals-core-$SIGNALS_CORE; do
  mkdir -p "$tmp/$p" && tar xzf "$tmp/$p.tgz" -C "$tmp/$p"
done
rewrite() {
  sed -e 's#from"preact/hooks"#from"./hooks.js"#g' -e 's#from"preact"#from"./preact.js"#g' \
      -e 's#from"@preact/signals-core"#from"./signals-core.js"#g' -e '/^\/\/# sourceMappingURL=/d' "$1" > "$2"
}
rewrite "$tmp/preact-$PREACT/package/dist/preact.module.js" $out/preact.js
rewrite "$tmp/preact-$PREACT/package/hooks/dist/hooks.module.js" $out/hooks.js
rewrite "$tmp/htm-$HTM/package/dist/htm.module.js" $out/htm.js
rewrite "$tmp/preact-signals-core-$SIGNALS_CORE/package/dist/signals-core.module.js" $out/signals-core.js
rewrite "$tmp/preact-signals-$SIGNALS/package/dist/signals.module.js" $out/signals.js
{
  echo "Vendored by scripts/vendor-js.sh: preact $PREACT (with preact/hooks), htm $HTM, @preact/signals $SIGNALS,"
  echo "@preact/signals-core $SIGNALS_CORE. MIT licensed; their licenses follow."
  for p in preact-$PREACT htm-$HTM preact-signals-$SIGNALS preact-signals-core-$SIGNALS_CORE; do
    echo; echo "== $p"; cat "$tmp/$p/package/LICENSE"* 2>/dev/null || echo "(MIT, see the package)"
  done
} > $out/LICENSES.txt
if grep -q 'from"[a-z@]' $out/*.js; then echo "vendor-js: a bare import is left" >&2; exit 1; fi
echo "vendor-js: wrote $out"
