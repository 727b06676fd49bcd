#!/bin/sh
# Install Debian's chromium for the browser test (tests/test_report_html.py).
#
# Never fails the build: when Chromium cannot be installed, the reason goes to STATUS_FILE
# and to stdout, and the test skips with it. apt-get needs root (or password-less sudo);
# a package list too old to find the package is refreshed once with apt-get update.
# Usage: install-chromium.sh STATUS_FILE
status="$1"
log="${status%.txt}.log"

give_up() {
    echo "$1" > "$status"
    echo "chromium: not installed: $1 (the browser test will skip)"
    exit 0
}

if command -v chromium > /dev/null 2>&1; then
    rm -f "$status"
    exit 0
fi
command -v apt-get > /dev/null 2>&1 || give_up "no apt-get: not a Debian system"
sudo=""
if [ "$(id -u)" != 0 ]; then
    if command -v sudo > /dev/null 2>&1 && sudo -n true 2> /dev/null; then
        sudo="sudo -n"
    else
        give_up "apt-get install chromium needs root, and this user has no password-less sudo"
    fi
fi
echo "chromium: installing Debian's package (about 120 MB, under a minute; log in $log)"
install="$sudo apt-get install -y --no-install-recommends chromium"
if ! $install > "$log" 2>&1; then
    $sudo apt-get update >> "$log" 2>&1 && $install >> "$log" 2>&1 \
        || give_up "apt-get install chromium failed: $(tail -n 1 "$log")"
fi
command -v chromium > /dev/null 2>&1 || give_up "apt-get ran but no chromium on PATH"
rm -f "$status"
echo "chromium: $(chromium --version 2> /dev/null)"
