#!/usr/bin/env bash
# Unit-tests deploy/monitoring/prometheusrule.yaml with promtool (deploy/monitoring/test/).
# promtool reads plain rule files, not a PrometheusRule object: its spec is extracted first.
# Needs promtool: apt-get install -y --no-install-recommends prometheus (Debian; the
# package's service is not needed and need not run).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
if ! command -v promtool >/dev/null; then
  echo "test-prometheus-rules: promtool not found; apt-get install -y --no-install-recommends prometheus" >&2
  exit 1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cd "$root"
node -e '
  const { readFileSync, writeFileSync } = require("node:fs");
  const { parse, stringify } = require("yaml");
  const [source, target] = process.argv.slice(1);
  writeFileSync(target, stringify(parse(readFileSync(source, "utf8")).spec));
' deploy/monitoring/prometheusrule.yaml "$work/prometheusrule.rules.yaml"
cp deploy/monitoring/test/prometheusrule.test.yaml "$work/"
promtool check rules "$work/prometheusrule.rules.yaml"
promtool test rules "$work/prometheusrule.test.yaml"
