#!/usr/bin/env bash
# Every test suite of gen-lab, in one command (README: "Run every test").
# Installs the Debian packages whose real programs check the generated files (NetworkManager's
# nmcli, shellcheck, cloud-init, iptables, openvpn, ...) when they are missing; that needs root.
# Prints the totals of all suites as its last line: "N passed, N failed".
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# command:package pairs the suites need.
readonly DEBIAN_NEEDS=(
  nmcli:network-manager
  /usr/lib/NetworkManager/nm-openvpn-service:network-manager-openvpn
  shellcheck:shellcheck
  cloud-init:cloud-init
  iptables:iptables
  openvpn:openvpn
  ip:iproute2
  dnsmasq:dnsmasq-base
  wg:wireguard-tools
  dbus-daemon:dbus
  dbus-send:dbus-bin
  sysctl:procps
  /usr/lib/x86_64-linux-gnu/systemd/libsystemd-shared-252.so:libsystemd-shared
  curl:curl
  logger:bsdutils
  dpkg-deb:dpkg
  /usr/lib/python3/dist-packages/yaml/__init__.py:python3-yaml
  /usr/libexec/ipsec/algparse:libreswan
  /usr/bin/aws:awscli
  openssl:openssl
  /usr/bin/systemd-analyze:systemd
)

missing=()
for pair in "${DEBIAN_NEEDS[@]}"; do
  cmd=${pair%%:*} pkg=${pair#*:}
  if [[ $cmd == /* ]]; then [[ -e $cmd ]] || missing+=("$pkg"); else command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg"); fi
done
if ((${#missing[@]} > 0)); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "test-all: missing Debian packages: ${missing[*]}; run this as root (it installs them) or install them first." >&2
    echo "0 passed, 1 failed"
    exit 1
  fi
  echo "test-all: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || {
    echo "test-all: apt-get install failed" >&2
    echo "0 passed, 1 failed"
    exit 1
  }
fi

if [[ ! -d node_modules ]]; then
  npm ci --no-audit --no-fund >/dev/null || { echo "test-all: npm ci failed" >&2; echo "0 passed, 1 failed"; exit 1; }
fi
if ! npm run --silent build; then
  echo "test-all: build failed" >&2
  echo "0 passed, 1 failed"
  exit 1
fi

passed=0 failed=0 skipped=0 status=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

# run_suite NAME COMMAND...: runs a uvu suite, adds its counts to the totals.
run_suite() {
  local name=$1
  shift
  echo "== $name"
  "$@" 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  local total pass
  # uvu's summary: "Total:  N" and "Passed: N" (colours stripped).
  total=$(sed 's/\x1b\[[0-9;]*m//g' "$log" | awk '/^ *Total:/ { n = $2 } END { print n + 0 }')
  pass=$(sed 's/\x1b\[[0-9;]*m//g' "$log" | awk '/^ *Passed:/ { n = $2 } END { print n + 0 }')
  # A test that cannot run here prints a line starting "SKIPPED" and returns: uvu counts it as
  # passed, this script as skipped.
  skip=$(grep -c '^SKIPPED' "$log" || true)
  passed=$((passed + pass - skip))
  skipped=$((skipped + skip))
  failed=$((failed + total - pass))
  if [[ $rc -ne 0 ]]; then
    status=1
    # A suite that crashed before its summary still counts as a failure.
    ((total - pass > 0)) || failed=$((failed + 1))
  fi
}

run_suite unit npx --no-install uvu -r tsx test '\.test\.ts$' -i e2e
run_suite e2e npx --no-install uvu -r tsx test/e2e '\.test\.ts$'

echo "$skipped skipped"
echo "$passed passed, $failed failed"
exit $((status || failed > 0))
