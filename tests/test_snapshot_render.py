"""Synthetic snapshots (kreplay/snapshot/render.py) against the parsers and the real
captures, the counters' names and deltas, and the tolerance table validate will use."""

import json
import re

import pytest
from conftest import REPO
from hypothesis import given, settings
from hypothesis import strategies as st

from kreplay.snapshot import parse_capture
from kreplay.snapshot.counters import (
    KSTACK_ZONES,
    ZONE_COLUMNS,
    counters_of,
    deltas,
    snapshot_counters,
)
from kreplay.snapshot.render import (
    SNAPSHOT_FILES,
    STYLES,
    partpopq_value,
    synthetic_snapshot,
    sysctl_text,
    vmstat_z_json,
    vmstat_z_text,
)
from kreplay.snapshot.tolerance import TOLERANCES, Tolerance, tolerance_for

SAMPLES = REPO / "tests" / "samples" / "sysctl"
STUB = REPO / "tests" / "record_stub"

# Zone names as UMA has them: letters, digits, spaces, '_', '-', and the odd ':' or ','.
names = st.text(alphabet="abcXYZ019 _-:,", min_size=1, max_size=31).filter(lambda n: n.strip() == n)
counts = st.integers(min_value=0, max_value=2**40)
zone_values = st.fixed_dictionaries({c: counts for c in ZONE_COLUMNS})


# ---------------------------------------------------------------------------- the real bytes


def test_the_13_14_style_prints_the_published_capture_byte_for_byte():
    real = (SAMPLES / "09-drm-kmod-68-fbsd13-14-coretxt-vmstat-z-head-xdomain.txt").read_bytes()
    zones = parse_capture(real, "09").as_dicts()
    again = [(z["name"], {**z, "requests": z["req"]}) for z in zones]
    assert vmstat_z_text(again, "v3").encode() == real


def test_the_12_style_prints_the_published_rows_byte_for_byte():
    real = (
        SAMPLES / "13-openzfs-10225-fbsd12-busy-zfs-host-vmstat-z-7col-overflow.txt"
    ).read_text()
    zones = [
        (z["name"], {**z, "requests": z["req"]})
        for z in parse_capture(real.encode(), "13").as_dicts()
    ]
    printed = vmstat_z_text(zones, "v1")
    assert printed.split("\n", 2)[2] == real  # after the header and its blank line


def test_sysctl_lines_print_as_the_published_and_stub_captures():
    real = (SAMPLES / "15-dotnet-64935-fbsd13-sysctl-vm-stats-page-counts.txt").read_text()
    entries = [(e.name, e.integer()) for e in parse_capture(real.encode(), "15").entries]
    assert sysctl_text(entries) == real
    assert synthetic_snapshot(dict(entries))["vm.stats.vm.txt"] == real  # sysctl's order
    reserv = (STUB / "vm.reserv-13.txt").read_text()
    counters = {"vm.reserv.reclaimed": 0, "vm.reserv.fullpop": 246, "vm.reserv.freed": 1234,
                "vm.reserv.broken": 0, "vm.reserv.partpopq.0.-1.size_kb": 54264,
                "vm.reserv.partpopq.0.-1.number": 38}  # fmt: skip
    assert synthetic_snapshot(counters)["vm.reserv.txt"] == reserv


# ---------------------------------------------------------------------------- round trips


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(names, zone_values), max_size=6), st.sampled_from(STYLES))
def test_vmstat_z_round_trips_in_every_style(zones, style):
    z = parse_capture(vmstat_z_text(zones, style).encode(), "z", "vmstat-z")
    columns = ZONE_COLUMNS[:7] if style == "v1" else ZONE_COLUMNS
    assert [(x.name, x.values) for x in z.zones] == [
        (name, tuple(values[c] for c in columns)) for name, values in zones
    ]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(names, zone_values), max_size=6))
def test_the_libxo_form_round_trips(zones):
    z = parse_capture(vmstat_z_json(zones).encode(), "z.json")
    assert [(x.name, x.requests, x.xdomain) for x in z.zones] == [
        (name, v["requests"], v["xdomain"]) for name, v in zones
    ]


def test_a_name_is_cut_to_31_characters_as_libmemstat_cuts_it():
    z = parse_capture(vmstat_z_text([("x" * 40, {"size": 1})]).encode(), "z")
    assert z.zones[0].name == "x" * 31


oid_parts = st.text(alphabet="abcz_0129%", min_size=1, max_size=8)
oids = st.lists(oid_parts, min_size=2, max_size=4).map(".".join)
# A string value: its first line no number (a number never continues), and no line that
# reads as an entry (no '.' in the alphabet, so no OID name).
string_values = (
    st.lists(st.text(alphabet="abc xyz:/#0-\t", max_size=12), min_size=1, max_size=4)
    .map("\n".join)
    .filter(lambda s: re.fullmatch(r"-?\d+(?: -?\d+)*", s.split("\n")[0]) is None)
)


@settings(max_examples=150, deadline=None)
@given(
    st.dictionaries(
        oids, st.one_of(st.integers(-(2**63), 2**64 - 1), string_values), min_size=1, max_size=8
    )
)
def test_sysctl_lines_round_trip(entries):
    s = parse_capture(sysctl_text(entries.items()).encode(), "s", "sysctl")
    got = {e.name: e.integer() if isinstance(entries[e.name], int) else e.value for e in s.entries}
    assert got == entries


@settings(max_examples=100, deadline=None)
@given(
    st.dictionaries(st.sampled_from(KSTACK_ZONES), zone_values, min_size=1),
    st.dictionaries(st.sampled_from(["vm.reserv.broken", "vm.reserv.freed", "vm.reserv.fullpop",
                                     "vm.stats.vm.v_wire_count", "vm.stats.vm.v_free_count",
                                     "vm.kstacks", "vm.domain.0.stats.free_count"]), counts),
    st.integers(min_value=1, max_value=4),
    st.sampled_from(STYLES[1:]),
)  # fmt: skip
def test_a_synthetic_snapshot_holds_exactly_its_counters(zones, oids, ndomains, style):
    counters = {f"zone.{z}.{c}": v for z, values in zones.items() for c, v in values.items()}
    counters |= oids | {f"vm.reserv.partpopq.{d}.-1.number": d + 1 for d in range(ndomains)}
    files = synthetic_snapshot(counters, style=style, ndomains=ndomains)
    assert set(files) <= set(SNAPSHOT_FILES)
    parsed = [parse_capture(text.encode(), f, SNAPSHOT_FILES[f][0]) for f, text in files.items()]
    got = snapshot_counters(parsed)
    partpop_sizes = {f"vm.reserv.partpopq.{d}.-1.size_kb": 0 for d in range(ndomains)}
    assert got == counters | partpop_sizes


def test_a_counter_no_file_holds_is_refused():
    with pytest.raises(ValueError, match="in no file"):
        synthetic_snapshot({"hw.ncpu": 8})
    with pytest.raises(ValueError, match="zone.<zone>"):
        synthetic_snapshot({"zone.kstack_cache.bogus": 1})


def test_the_partpopq_value_is_the_kernel_string():
    assert partpopq_value([(0, -1, 54264, 38)]) == (
        "\nDOMAIN    LEVEL     SIZE  NUMBER\n\n     0,      -1,  54264K,     38\n"
    )


# ---------------------------------------------------------------------------- counters


def test_text_and_json_name_zone_counters_alike():
    zones = [("kstack_cache", {"size": 16384, "used": 3, "requests": 9, "xdomain": 1})]
    text = counters_of(parse_capture(vmstat_z_text(zones, "v5").encode(), "t"))
    as_json = counters_of(parse_capture(vmstat_z_json(zones).encode(), "j"))
    assert text == as_json
    assert text["zone.kstack_cache.requests"] == 9 and text["zone.kstack_cache.xdomain"] == 1


def test_the_first_capture_of_a_counter_wins_and_deltas_need_both_snapshots():
    a = parse_capture(b"vm.kstacks: 5\n", "a")
    b = parse_capture(b"vm.kstacks: 7\nvm.kstack_cache_size: 128\n", "b")
    assert snapshot_counters([a, b]) == {"vm.kstacks": 5, "vm.kstack_cache_size": 128}
    d = deltas({"x": 1, "y": 2}, {"x": 4})
    assert list(d) == ["x"] and d["x"].change == 3


# ---------------------------------------------------------------------------- tolerances


def test_every_tolerance_says_why_and_in_what_unit():
    assert len({t.counter for t in TOLERANCES}) == len(TOLERANCES)
    for t in TOLERANCES:
        assert t.reason and t.unit and t.absolute >= 0 and t.per_cpu >= 0 and t.relative >= 0


def test_every_tolerance_names_a_counter_a_snapshot_can_hold():
    zones = {z: dict.fromkeys(ZONE_COLUMNS, 1) for z in KSTACK_ZONES}
    counters = {f"zone.{z}.{c}": 1 for z in zones for c in ZONE_COLUMNS}
    counters |= {f"vm.reserv.{n}": 1 for n in ("broken", "freed", "reclaimed", "fullpop")}
    counters |= {f"vm.stats.vm.v_{n}": 1 for n in ("forks", "vforks", "rforks", "kthreads",
                                                   "wire_count", "free_count")}  # fmt: skip
    counters |= {"vm.kstacks": 1, "vm.reserv.partpopq.0.-1.number": 1}
    files = synthetic_snapshot(counters)
    held = snapshot_counters(
        parse_capture(t.encode(), f, SNAPSHOT_FILES[f][0]) for f, t in files.items()
    )
    for t in TOLERANCES:
        assert any(tolerance_for(name) is t for name in held), t.counter


def test_a_tolerance_allows_absolute_per_cpu_and_relative_slack():
    t = Tolerance("x", "items", "because", absolute=2, per_cpu=3, relative=0.1)
    assert t.allowance(observed=-95, ncpu=4) == 2 + 12 + 10
    assert t.within(predicted=124, observed=100, ncpu=4)
    assert not t.within(predicted=125, observed=100, ncpu=4)
    assert tolerance_for("zone.kstack_cache.fail").allowance(10**6, 64) == 0
    assert tolerance_for("vm.reserv.partpopq.3.-1.number").counter == "vm.reserv.partpopq.*.number"
    assert tolerance_for("zone.UMA Kegs.used") is None
    json.dumps([t.counter for t in TOLERANCES])  # plain names: they go into --json output


def test_the_docs_list_every_tolerance_as_the_table_has_it():
    docs = (REPO / "docs" / "recording.md").read_text()
    rows = re.findall(r"^\| `([^`]+)` \| ([^|]+) \| (\d+) \| (\d+) \| ([\d.]+) \|", docs, re.M)
    assert [(c, u.strip(), int(a), int(p), float(r)) for c, u, a, p, r in rows] == [
        (t.counter, t.unit, t.absolute, t.per_cpu, t.relative) for t in TOLERANCES
    ]
