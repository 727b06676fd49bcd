#!/bin/sh
# Install Debian's shellcheck for the recording script's test (tests/test_record_script.py).
#
# As root (or with password-less sudo): apt-get install shellcheck. Otherwise nothing is
# installed. Never fails the build: when shellcheck cannot be had, the reason goes to
# STATUS_FILE and to stdout, and the test skips with it.
# Usage: install-shellcheck.sh STATUS_FILE
status="$1"
log="${status%.txt}.log"

give_up() {
    echo "$1" > "$status"
    echo "shellcheck: not installed: $1 (the shellcheck test will skip)"
    exit 0
}

if command -v shellcheck > /dev/null 2>&1; then
    rm -f "$status"
    exit 0
fi
command -v apt-get > /dev/null 2>&1 || give_up "no apt-get: not a Debian system"
if [ "$(id -u)" = 0 ]; then
    as=""
elif command -v sudo > /dev/null 2>&1 && sudo -n true 2> /dev/null; then
    as="sudo -n"
else
    give_up "not root and no password-less sudo: apt-get install shellcheck by hand"
fi
echo "shellcheck: installing Debian's package (log in $log)"
install="$as apt-get install -y --no-install-recommends shellcheck"
if ! $install > "$log" 2>&1; then  # an old package list: refresh it once
    $as apt-get update >> "$log" 2>&1
    $install >> "$log" 2>&1 || give_up "apt-get install shellcheck failed: $(tail -n 1 "$log")"
fi
command -v shellcheck > /dev/null 2>&1 || give_up "apt-get ran but no shellcheck on PATH"
rm -f "$status"
echo "shellcheck: $(shellcheck --version | sed -n 's/^version: //p')"
