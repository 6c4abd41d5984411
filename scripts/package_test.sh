#!/usr/bin/env bash
# Builds the Debian package from a Release build folder and checks it as an admin would:
#   package_test.sh [build-dir]          (default: build)
#  1. `cpack -G DEB`; the .deb lists /usr/bin/coffer, the systemd units, the /etc/coffer conffile
#     and the state folder, and its Depends (from dpkg-shlibdeps) name Debian's libssl3 & co.;
#  2. `dpkg -i`: the `coffer` system user exists, /var/lib/coffer is coffer:coffer 0700,
#     coffer-server.service is enabled (not started) and starts the installed binary;
#     `/usr/bin/coffer version` answers, `coffer kms-plugin -help` runs the plugin program installed
#     in /usr/libexec/coffer, and /usr/bin/coffer itself links no gRPC;
#  3. `coffer server -dev` from the package, run as the coffer user, answers 200 on
#     GET /v1/sys/health;
#  4. an edited conffile survives reinstalling the package; `dpkg --remove` removes the binary
#     and keeps the conffile; `dpkg --purge` removes the conffile and the enable symlink.
# Installing needs root (CI runs as root on Debian 12): as another user the script checks the
# .deb only and says so. It refuses to run where a coffer package is already installed. Whatever
# happens, it stops the server, purges the package and deletes the coffer user if it created it.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
start=$SECONDS

fail() { echo "package_test: FAIL: $*" >&2; exit 1; }
ok() { echo "package_test: ok [$((SECONDS - start))s]: $*"; }

[ -f "$build/CMakeCache.txt" ] || fail "$build is not a configured build folder"
work=$(mktemp -d /tmp/coffer-package-test.XXXXXX)
server_pid=""
installed=0
created_user=0
cleanup() {
  local status=$?
  set +e
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null; fi
  if [ $installed -eq 1 ]; then dpkg --purge coffer >/dev/null 2>&1; fi
  if [ $created_user -eq 1 ] && getent passwd coffer >/dev/null; then
    deluser --quiet --system coffer >/dev/null 2>&1
    getent group coffer >/dev/null && delgroup --quiet --system coffer >/dev/null 2>&1
  fi
  rm -rf "$work"
  if [ $status -ne 0 ]; then echo "package_test: FAILED" >&2; fi
  exit $status
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A folder configured before the install rules existed keeps its old prefix (/usr/local): the
# package is for /usr. Reconfiguring only regenerates (the prefix is not in any compile flag).
prefix=$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$build/CMakeCache.txt")
if [ "$prefix" != /usr ]; then
  echo "package_test: $build has CMAKE_INSTALL_PREFIX=$prefix; reconfiguring it with /usr"
  cmake -S . -B "$build" -DCMAKE_INSTALL_PREFIX=/usr >"$work/cmake.log" 2>&1 ||
    { cat "$work/cmake.log"; fail "cmake -DCMAKE_INSTALL_PREFIX=/usr"; }
fi
cmake --build "$build" --target coffer >"$work/build.log" 2>&1 ||
  { tail -n 30 "$work/build.log"; fail "building coffer in $build"; }
ok "coffer built in $build"

# 1. Build and inspect the .deb.
cpack -G DEB --config "$build/CPackConfig.cmake" -B "$work/cpack" >"$work/cpack.log" 2>&1 ||
  { cat "$work/cpack.log"; fail "cpack -G DEB"; }
deb=$(find "$work/cpack" -maxdepth 1 -name 'coffer_*.deb' | head -n 1)
[ -n "$deb" ] || { cat "$work/cpack.log"; fail "cpack made no coffer_*.deb"; }
ok "built $(basename "$deb") ($(du -h "$deb" | cut -f1))"

dpkg-deb -c "$deb" | awk '{print $1, $2, $NF}' >"$work/contents"
has() { grep -q " \./${1#/}\$" "$work/contents" || fail "the package has no $1"; }
has /usr/bin/coffer
has /usr/libexec/coffer/coffer-kms-plugin
for unit in coffer-server.service coffer-agent.service coffer-agent-once.service \
            coffer-agent.timer coffer-kms-plugin.service; do
  has /lib/systemd/system/$unit
done
has /etc/coffer/coffer.hcl
has /usr/share/doc/coffer/README.md
has /usr/share/doc/coffer/examples/agent/worker.hcl
grep -q '^-rwxr-xr-x root/root \./usr/bin/coffer$' "$work/contents" ||
  fail "/usr/bin/coffer is not 0755 root"
grep -q '^drwx------ root/root \./var/lib/coffer/$' "$work/contents" ||
  fail "no /var/lib/coffer (0700)"
grep -q '^-rwxr-xr-x root/root \./usr/libexec/coffer/coffer-kms-plugin$' "$work/contents" ||
  fail "/usr/libexec/coffer/coffer-kms-plugin is not 0755 root"
ok "contents: the binary and the KMS plugin's program, 5 units, /etc/coffer/coffer.hcl, docs, /var/lib/coffer"

[ "$(dpkg-deb -I "$deb" conffiles)" = /etc/coffer/coffer.hcl ] ||
  fail "conffiles is not /etc/coffer/coffer.hcl"
dpkg-deb -f "$deb" Package Version Architecture Section Maintainer Depends >"$work/control"
sed 's/^/package_test:   /' "$work/control"
depends=$(sed -n 's/^Depends: //p' "$work/control")
for lib in libssl3 libc6 libstdc++6 libsqlite3-0 libgrpc++1.51 adduser; do
  [[ ", $depends," == *", $lib"[\ ,]* ]] || fail "Depends lacks $lib: $depends"
done
grep -qx 'Section: admin' "$work/control" || fail "section is not admin"
project_version=$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$build/CMakeCache.txt")
grep -qx "Version: $project_version-1" "$work/control" || fail "version is not $project_version-1"
dpkg-deb -e "$deb" "$work/control.d"
for s in postinst prerm postrm; do
  [ -x "$work/control.d/$s" ] || fail "no executable $s"
  sh -n "$work/control.d/$s" || fail "$s does not parse"
done
ok "control: Depends from dpkg-shlibdeps (libssl3, libstdc++6, ...), conffiles, maintainer scripts"

if [ "$(id -u)" -ne 0 ]; then
  echo "package_test: SKIPPED installing the package: dpkg -i needs root (the .deb checks passed)"
  exit 0
fi
# Not on a machine where a coffer package is installed or removed but not purged (its conffiles
# are still there): the final purge would delete the admin's config.
pkg_status=$(dpkg-query -W -f='${db:Status-Status}' coffer 2>/dev/null || true)
if [ -n "$pkg_status" ] && [ "$pkg_status" != not-installed ]; then
  fail "a coffer package is on this machine already ($pkg_status); not touching it"
fi
[ -e /usr/bin/coffer ] && fail "/usr/bin/coffer exists but belongs to no coffer package"
getent passwd coffer >/dev/null || created_user=1
had_state_dir=0
[ -e /var/lib/coffer ] && had_state_dir=1

# 2. Install.
installed=1
dpkg -i "$deb" >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log"; fail "dpkg -i"; }
ok "dpkg -i"
id coffer >/dev/null || fail "no coffer user after dpkg -i"
[ "$(getent passwd coffer | cut -d: -f6,7)" = /var/lib/coffer:/usr/sbin/nologin ] ||
  fail "coffer user: $(getent passwd coffer)"
[ "$(stat -c '%U:%G %a' /var/lib/coffer)" = "coffer:coffer 700" ] ||
  fail "/var/lib/coffer is $(stat -c '%U:%G %a' /var/lib/coffer)"
version=$(/usr/bin/coffer version)
[[ $version == "Coffer v"* ]] || fail "coffer version said: $version"
ok "$(id coffer); /var/lib/coffer coffer:coffer 0700; $version"
# `coffer kms-plugin` runs the installed plugin program; the server's binary loads no gRPC.
/usr/bin/coffer kms-plugin -help >"$work/kms-help.txt" 2>&1 ||
  { cat "$work/kms-help.txt"; fail "coffer kms-plugin -help"; }
grep -q -- '--transit-key' "$work/kms-help.txt" ||
  { cat "$work/kms-help.txt"; fail "coffer kms-plugin -help did not show the plugin's flags"; }
ldd /usr/bin/coffer | grep -q 'libgrpc' && fail "/usr/bin/coffer links gRPC"
ok "coffer kms-plugin runs /usr/libexec/coffer/coffer-kms-plugin; /usr/bin/coffer has no gRPC"
[ -L /etc/systemd/system/multi-user.target.wants/coffer-server.service ] ||
  fail "coffer-server.service is not enabled"
for unit in coffer-agent.service coffer-agent.timer coffer-kms-plugin.service; do
  [ -e /etc/systemd/system/multi-user.target.wants/$unit ] && fail "$unit is enabled"
  [ -e /etc/systemd/system/timers.target.wants/$unit ] && fail "$unit is enabled"
done
if [ -d /run/systemd/system ]; then
  systemctl is-active --quiet coffer-server.service && fail "coffer-server.service was started"
fi
grep -h '^ExecStart=' /lib/systemd/system/coffer-*.service |
  grep -v '^ExecStart=/usr/bin/coffer ' &&
  fail "a unit does not start /usr/bin/coffer"
grep -qx 'User=coffer' /lib/systemd/system/coffer-server.service || fail "server unit: User="
# systemd's own check of the installed units (syntax, the ExecStart binaries, the timer's unit).
if command -v systemd-analyze >/dev/null; then
  (cd /lib/systemd/system && systemd-analyze verify coffer-server.service coffer-agent.service \
    coffer-agent-once.service coffer-agent.timer coffer-kms-plugin.service) \
    >"$work/verify.log" 2>&1 ||
    { cat "$work/verify.log"; fail "systemd-analyze verify"; }
  [ -s "$work/verify.log" ] && { cat "$work/verify.log"; fail "systemd-analyze verify warned"; }
fi
ok "coffer-server.service enabled, not started; every unit starts /usr/bin/coffer and verifies"

# 3. The packaged binary serves, as the coffer user.
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])')
# setpriv execs the server (no parent left between us and it): $server_pid is the server.
(cd /var/lib/coffer && exec setpriv --reuid=coffer --regid=coffer --clear-groups -- \
  /usr/bin/coffer server -dev -dev-listen-address="127.0.0.1:$port") >"$work/server.log" 2>&1 &
server_pid=$!
code=000
for _ in $(seq 1 100); do
  code=$(curl -s -o "$work/health.json" -w '%{http_code}' \
    "http://127.0.0.1:$port/v1/sys/health" || true)
  [ "$code" = 200 ] && break
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.1
done
[ "$code" = 200 ] || { cat "$work/server.log"; fail "GET /v1/sys/health answered $code"; }
grep -q '"sealed":false' "$work/health.json" || fail "health: $(cat "$work/health.json")"
kill "$server_pid"
wait "$server_pid" 2>/dev/null || true
server_pid=""
ok "coffer server -dev (as coffer) answered 200 on /v1/sys/health: $(cat "$work/health.json")"

# 4. Conffile kept on reinstall; remove, then purge.
echo '# edited by package_test.sh' >>/etc/coffer/coffer.hcl
dpkg -i "$deb" >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log"; fail "dpkg -i (again)"; }
grep -q 'edited by package_test.sh' /etc/coffer/coffer.hcl ||
  fail "reinstalling overwrote the edited conffile"
[ "$(stat -c '%U:%G %a' /var/lib/coffer)" = "coffer:coffer 700" ] ||
  fail "reinstall reset /var/lib/coffer"
dpkg --remove coffer >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log"; fail "dpkg --remove"; }
[ -e /usr/bin/coffer ] && fail "/usr/bin/coffer is still there after dpkg --remove"
[ -f /etc/coffer/coffer.hcl ] || fail "dpkg --remove removed the conffile"
dpkg --purge coffer >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log"; fail "dpkg --purge"; }
installed=0
[ -e /usr/bin/coffer ] && fail "/usr/bin/coffer is still there after purge"
[ -e /etc/coffer/coffer.hcl ] && fail "/etc/coffer/coffer.hcl is still there after purge"
[ -e /etc/systemd/system/multi-user.target.wants/coffer-server.service ] &&
  fail "the enable symlink is still there after purge"
[ -e /lib/systemd/system/coffer-server.service ] && fail "the unit is still there after purge"
[ $had_state_dir -eq 0 ] && [ -e /var/lib/coffer ] && fail "purge kept an empty /var/lib/coffer"
ok "edited conffile kept on reinstall; remove kept it, purge removed binary, conffile, units"

echo "package_test: passed in $((SECONDS - start))s"
