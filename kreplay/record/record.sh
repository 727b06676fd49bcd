#!/bin/sh
# kreplay's recording script for FreeBSD (`kreplay record --script`; docs/recording.md).
#
# Usage: sh record.sh [-o DIR] [-n NAME] [-t POINTS] [-f] COMMAND [ARGUMENT ...]
#
# Takes a snapshot of the kernel's counters (vmstat -z, sysctl vm.reserv, vm.stats.vm, ...),
# runs COMMAND under `ktrace -i -d -t POINTS`, takes the snapshot again, prints the trace
# with kdump and writes, in DIR (default .):
#
#   NAME.ktr         the binary trace, as the kernel wrote it
#   NAME.kdump       the trace printed for kreplay (kdump -H -T -c, or -H -T without -c)
#   NAME.toml        the sidecar: provenance, the machine to replay on, the machine's own
#                    parameters, and every capture of both snapshots with its sha256
#   NAME.snapshots/  machine/, before/, after/: each command's output, byte for byte
#
#   -o DIR     where to write (created if missing)
#   -n NAME    the recording's name (default: the command's name and the time); letters,
#              digits, '_', '+', '-': it becomes the trace's name in kreplay
#   -t POINTS  ktrace trace points (default cfw: syscalls, page faults, context switches)
#   -f         overwrite an earlier recording of the same name
#
# Only the base system: sh, sysctl, vmstat, ktrace, kdump, date, uname, mkdir, rm, awk, sed,
# tr, sha256. Exit status: COMMAND's (as ktrace returns it), or 2 when recording failed.
#
# Between the two `vmstat -z` captures the script runs nothing but ktrace; the other
# captures are taken in mirrored order around it, so at most 11 commands of the script run
# between the two captures of any counter (SCRIPT_FORKS in kreplay/snapshot/tolerance.py).

RECORD_VERSION=1

usage() {
	echo "usage: sh record.sh [-o DIR] [-n NAME] [-t POINTS] [-f] COMMAND [ARGUMENT ...]" >&2
	exit 2
}

partial=  # what die removes: the snapshots of a recording that never ran its workload
die() {
	echo "record.sh: $*" >&2
	[ -z "$partial" ] || rm -rf "$partial"
	exit 2
}

outdir=.
name=
points=cfw
force=no
while getopts fo:n:t:h opt; do
	case $opt in
	f) force=yes ;;
	o) outdir=$OPTARG ;;
	n) name=$OPTARG ;;
	t) points=$OPTARG ;;
	*) usage ;;
	esac
done
shift $((OPTIND - 1))
[ $# -gt 0 ] || usage

case $points in
'' | *[!+cfinpstuwy]*) die "-t $points: ktrace trace points are letters of +cfinpstuwy" ;;
esac
if [ -z "$name" ]; then
	name=$(printf '%s-%s' "${1##*/}" "$(date -u +%Y%m%dT%H%M%SZ)" | tr -c 'A-Za-z0-9_+-' '_')
fi
case $name in
[!A-Za-z0-9]* | *[!A-Za-z0-9_+-]*)
	die "-n $name: a name is letters, digits, '_', '+' and '-', starting with a letter or digit"
	;;
esac
[ ${#name} -le 100 ] || die "-n $name: at most 100 characters"

mkdir -p "$outdir" || die "cannot create $outdir"
ktr=$outdir/$name.ktr
kdump_file=$outdir/$name.kdump
sidecar=$outdir/$name.toml
snapdir=$outdir/$name.snapshots
for f in "$ktr" "$kdump_file" "$sidecar" "$snapdir"; do
	if [ -e "$f" ] && [ $force = no ]; then
		die "$f exists: another name (-n), or -f to overwrite"
	fi
done
rm -rf "$snapdir" "$ktr" "$kdump_file" "$sidecar" || die "cannot remove the earlier $name"
partial=$snapdir
mkdir -p "$snapdir/machine" "$snapdir/before" "$snapdir/after" || die "cannot create $snapdir"
manifest=$snapdir/manifest

# capture SNAPSHOT FORMAT FILE COMMAND...: COMMAND's output into SNAPSHOT/FILE, its errors
# into SNAPSHOT/FILE.err, and a manifest line; only builtins besides COMMAND (no fork).
capture() {
	c_snap=$1 c_format=$2 c_file=$3
	shift 3
	"$@" > "$snapdir/$c_snap/$c_file" 2> "$snapdir/$c_snap/$c_file.err"
	printf '%s|%s|%s|%s|%s\n' "$c_snap" "$c_format" "$c_file" "$?" "$*" >> "$manifest"
}

# The snapshot's captures, nearest the workload last before it and first after it.
before() {
	capture before sysctl vm.domain.txt sysctl vm.domain
	capture before sysctl vm.kstacks.txt sysctl -i vm.kstacks vm.kstack_cache_size
	capture before sysctl vm.stats.vm.txt sysctl vm.stats.vm
	capture before sysctl vm.reserv.txt sysctl vm.reserv
	capture before vmstat-z-json vmstat-z.json vmstat --libxo json -z
	capture before vmstat-z vmstat-z.txt vmstat -z
}

after() {
	capture after vmstat-z vmstat-z.txt vmstat -z
	capture after vmstat-z-json vmstat-z.json vmstat --libxo json -z
	capture after sysctl vm.reserv.txt sysctl vm.reserv
	capture after sysctl vm.stats.vm.txt sysctl vm.stats.vm
	capture after sysctl vm.kstacks.txt sysctl -i vm.kstacks vm.kstack_cache_size
	capture after sysctl vm.domain.txt sysctl vm.domain
}

# The machine: its shape, its kernel, and whether the kernel has INVARIANTS or KASAN.
machine=$snapdir/machine/machine.txt
capture machine sysctl machine.txt sysctl -i hw.machine hw.machine_arch hw.ncpu \
	hw.physmem hw.pagesize vm.ndomains kern.kstack_pages vm.kstack_cache_size \
	kern.osrelease kern.osreldate kern.version kern.features.invariants \
	kern.features.invariant_support kern.features.kasan kern.features.kmsan \
	kern.features.ktrace

oid() {  # the first line of an OID's value in machine.txt ("" when absent)
	awk -v name="$1: " 'index($0, name) == 1 { print substr($0, length(name) + 1); exit }' \
		"$machine"
}

is_int() {
	case $1 in '' | *[!0-9]*) return 1 ;; esac
}

[ -s "$machine" ] || die "sysctl printed nothing about this machine (see $machine.err)"
[ "$(oid kern.features.ktrace)" = 1 ] ||
	die "this kernel has no ktrace (kern.features.ktrace: options KTRACE)"
ncpu=$(oid hw.ncpu)
ndomains=$(oid vm.ndomains)
is_int "$ndomains" || ndomains=1
if [ "$ndomains" -gt 1 ] && is_int "$ncpu"; then
	cpus=
	i=0
	while [ $i -lt "$ncpu" ]; do
		cpus="$cpus dev.cpu.$i.%domain"
		i=$((i + 1))
	done
	# shellcheck disable=SC2086  # one word per OID
	capture machine sysctl cpus.txt sysctl -i $cpus
fi

started=$(date -u +%Y-%m-%dT%H:%M:%SZ)
before
interrupted=false
trap 'interrupted=true' INT
partial=
ktrace -i -d -t "$points" -f "$ktr" "$@"
status=$?
trap - INT
after
ended=$(date -u +%Y-%m-%dT%H:%M:%SZ)

[ -s "$ktr" ] || die "ktrace wrote no trace to $ktr (status $status)"
kdump_options="-H -T -c"
if ! kdump -H -T -c -f "$ktr" > "$kdump_file" 2> "$snapdir/kdump.err"; then
	kdump_options="-H -T"  # a kdump without -c (the cpu column)
	kdump -H -T -f "$ktr" > "$kdump_file" 2> "$snapdir/kdump.err" ||
		die "kdump failed: $(awk 'NR == 1' "$snapdir/kdump.err")"
fi

# ---------------------------------------------------------------------------- the sidecar

toml_str() {  # $1 as a TOML basic string; control characters are dropped
	printf '"%s"' "$(printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' |
		tr -d '\000-\037\177')"
}

digest() {  # the sha256 of a file, when the base system's sha256(1) is there
	if command -v sha256 > /dev/null 2>&1; then
		sha256 -q "$1"
	fi
}

feature() {
	if [ "$(oid "kern.features.$1")" = 1 ]; then echo true; else echo false; fi
}

int_line() {  # KEY VALUE: `KEY = VALUE`, or a comment when the kernel did not say
	if is_int "$2"; then
		printf '%s = %s\n' "$1" "$2"
	else
		printf '# %s: not reported by this kernel\n' "$1"
	fi
}

# [replay]: a preset of kreplay's model, and the machine's own numbers over it.
arch=$(oid hw.machine_arch)
case $arch in
amd64) if [ "$(feature kasan)" = true ]; then preset=amd64-kasan; else preset=amd64; fi ;;
i386) preset=i386 ;;
aarch64) preset=arm64 ;;
*) preset=amd64 ;;
esac
physmem=$(oid hw.physmem)
set_line=
add_setting() {
	if is_int "$2"; then set_line="${set_line:+$set_line, }$1 = $2"; fi
}
add_setting ncpu "$ncpu"
add_setting domains "$ndomains"
if is_int "$physmem"; then
	add_setting mem_per_domain_mb $((physmem / 1048576 / ndomains))
fi
add_setting kstack_pages "$(oid kern.kstack_pages)"
add_setting kstack_cache_size "$(oid vm.kstack_cache_size)"

cpu_domains=
if [ -s "$snapdir/machine/cpus.txt" ]; then
	# ["0-7", "8-15"] when each domain's cpus are one range, else nothing
	cpu_domains=$(awk -F': ' -v nd="$ndomains" '
		{ split($1, part, "."); cpu = part[3] + 0; dom[cpu] = $2 + 0; n++ }
		END {
			out = ""
			for (d = 0; d < nd; d++) {
				lo = -1; hi = -1; count = 0
				for (c = 0; c < n; c++) if (c in dom && dom[c] == d) {
					if (lo < 0) lo = c; hi = c; count++
				}
				if (lo < 0 || hi - lo + 1 != count) exit
				out = out (d ? ", " : "") "\"" lo "-" hi "\""
			}
			print "[" out "]"
		}' "$snapdir/machine/cpus.txt")
fi

osrelease=$(oid kern.osrelease)
version=$(oid kern.version)
host=$(uname -n)
command=$*
kdump_command="kdump $kdump_options -f $name.ktr"
{
	echo "# Real capture: recorded with kreplay's record.sh (kreplay record --script)"
	echo "[provenance]"
	echo 'kind = "real"'
	echo "source = $(toml_str "kreplay record.sh $RECORD_VERSION")"
	echo "os = $(toml_str "FreeBSD $osrelease $arch")"
	echo "host = $(toml_str "$host")"
	echo "date = $(toml_str "${started%%T*}")"
	echo "command = $(toml_str "ktrace -i -d -t $points -f $name.ktr $command; $kdump_command")"
	echo "notes = $(toml_str "workload exit status $status; interrupted: $interrupted")"
	echo
	echo "[replay]"
	echo "machine = $(toml_str "$preset")"
	[ -n "$set_line" ] && echo "set = { $set_line }"
	[ -n "$cpu_domains" ] && echo "cpu_domains = $cpu_domains"
	echo
	echo "[machine]  # as sysctl printed it before the workload (snapshots/machine/machine.txt)"
	echo "osrelease = $(toml_str "$osrelease")"
	int_line osreldate "$(oid kern.osreldate)"
	echo "version = $(toml_str "$version")"
	echo "machine = $(toml_str "$(oid hw.machine)")"
	echo "machine_arch = $(toml_str "$arch")"
	int_line ncpu "$ncpu"
	int_line ndomains "$(oid vm.ndomains)"
	int_line physmem "$physmem"
	int_line pagesize "$(oid hw.pagesize)"
	int_line kstack_pages "$(oid kern.kstack_pages)"
	int_line kstack_cache_size "$(oid vm.kstack_cache_size)"
	for f in invariants invariant_support kasan kmsan; do
		echo "$f = $(feature $f)"
	done
	echo
	echo "[recording]"
	echo "version = $RECORD_VERSION"
	echo "trace = $(toml_str "$name.kdump")"
	echo "ktrace_file = $(toml_str "$name.ktr")"
	echo "ktrace_sha256 = $(toml_str "$(digest "$ktr")")"
	echo "ktrace_points = $(toml_str "$points")"
	echo "kdump_options = $(toml_str "$kdump_options")"
	echo "workload = $(toml_str "$command")"
	echo "workload_status = $status"
	echo "interrupted = $interrupted"
	echo "started = $(toml_str "$started")"
	echo "ended = $(toml_str "$ended")"
	while IFS='|' read -r snap format file rc cmd; do
		path=$snapdir/$snap/$file
		echo
		echo "[[capture]]"
		echo "snapshot = \"$snap\""
		echo "format = \"$format\""
		echo "command = $(toml_str "$cmd")"
		echo "file = $(toml_str "$name.snapshots/$snap/$file")"
		echo "status = $rc"
		echo "sha256 = $(toml_str "$(digest "$path")")"
		if [ -s "$path.err" ]; then
			echo "error = $(toml_str "$(awk 'NR == 1' "$path.err")")"
		fi
		rm -f "$path.err"
	done < "$manifest"
} > "$sidecar" || die "cannot write $sidecar"
rm -f "$manifest"
[ -s "$snapdir/kdump.err" ] || rm -f "$snapdir/kdump.err"

echo "record.sh: $name: workload status $status; wrote $kdump_file, $ktr, $sidecar, $snapdir/"
exit "$status"
