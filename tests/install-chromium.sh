#!/bin/sh
# Install Debian's chromium for the browser test (tests/test_report_html.py).
#
# As root (or with password-less sudo): apt-get install chromium. Otherwise: the packages
# apt would install (apt-get -s) are fetched with apt-get download and unpacked with
# dpkg -x under DIR/chromium/, with a DIR/chromium/chromium wrapper that finds their
# libraries; the test looks there too. A package list too old to find a package is
# refreshed once when root can.
#
# Never fails the build: when Chromium cannot be had, the reason goes to STATUS_FILE and to
# stdout, and the test skips with it.
# Usage: install-chromium.sh STATUS_FILE   (DIR is the folder of STATUS_FILE)
status="$1"
dir="$(dirname "$status")"
log="${status%.txt}.log"
local_root="$dir/chromium"

give_up() {
    echo "$1" > "$status"
    echo "chromium: not installed: $1 (the browser test will skip)"
    exit 0
}

done_with() {
    rm -f "$status"
    echo "chromium: $1"
    exit 0
}

install_system() {  # $1: "" as root, "sudo -n" otherwise
    echo "chromium: installing Debian's package (about 120 MB, under a minute; log in $log)"
    install="$1 apt-get install -y --no-install-recommends chromium"
    if ! $install > "$log" 2>&1; then
        $1 apt-get update >> "$log" 2>&1 && $install >> "$log" 2>&1 \
            || give_up "apt-get install chromium failed: $(tail -n 1 "$log")"
    fi
    command -v chromium > /dev/null 2>&1 || give_up "apt-get ran but no chromium on PATH"
    done_with "$(chromium --version 2> /dev/null)"
}

install_local() {
    echo "chromium: not root: unpacking Debian's packages into $local_root (log in $log)"
    packages=$(apt-get -s install --no-install-recommends chromium 2> "$log" \
        | awk '/^Inst /{print $2}')
    [ -n "$packages" ] || give_up "apt-get -s install chromium found nothing to fetch \
(as root: apt-get update): $(tail -n 1 "$log")"
    rm -rf "$local_root" && mkdir -p "$local_root/debs" "$local_root/root"
    # shellcheck disable=SC2086  # one word per package
    (cd "$local_root/debs" && apt-get download $packages) >> "$log" 2>&1 \
        || give_up "apt-get download failed: $(tail -n 1 "$log")"
    for deb in "$local_root"/debs/*.deb; do
        dpkg -x "$deb" "$local_root/root" >> "$log" 2>&1 || give_up "dpkg -x $deb failed"
    done
    rm -rf "$local_root/debs"
    cat > "$local_root/chromium" << 'EOF'
#!/bin/sh
# Chromium unpacked from Debian's packages by tests/install-chromium.sh (no root needed).
root="$(cd "$(dirname "$0")" && pwd)/root"
libs="$root/usr/lib/chromium"
for d in "$root"/usr/lib/*-linux-gnu "$root"/lib/*-linux-gnu; do
    [ -d "$d" ] && libs="$libs:$d"
done
LD_LIBRARY_PATH="$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" exec "$root/usr/lib/chromium/chromium" "$@"
EOF
    chmod +x "$local_root/chromium"
    version=$("$local_root/chromium" --version 2>> "$log") \
        || give_up "the unpacked chromium does not start: $(tail -n 1 "$log")"
    done_with "$version (unpacked in $local_root)"
}

if command -v chromium > /dev/null 2>&1; then
    rm -f "$status"
    exit 0
fi
if [ -x "$local_root/chromium" ] && "$local_root/chromium" --version > /dev/null 2>&1; then
    rm -f "$status"
    exit 0
fi
command -v apt-get > /dev/null 2>&1 || give_up "no apt-get: not a Debian system"
if [ "$(id -u)" = 0 ]; then
    install_system ""
elif command -v sudo > /dev/null 2>&1 && sudo -n true 2> /dev/null; then
    install_system "sudo -n"
else
    install_local
fi
