"""A stub FreeBSD command for tests/test_record_script.py: installed in a test's bin/ as
sysctl, vmstat, kdump, ktrace and sha256, it answers as the recorded machine would.

$KREPLAY_STUB names the test's stub folder, which holds machine.json:

    {"before": {COMMAND LINE: ANSWER}, "after": {...}, "any": {...}}

where an ANSWER is {"file": path or "text": output, "err": stderr text, "rc": status}.
A command line answers from the current phase ("after" once ktrace's workload has ended),
else from "any"; one the test did not record is status 127 and a line on stderr. Every call
is appended to calls.log, one line each, as the logging wrappers of the real tools do.

ktrace runs its command (ktrace(1) execs it, so a Ctrl-C reaches only the command and the
script: the stub waits it out), writes a marker file where -f says, and then turns the
phase to "after". sha256 -q FILE prints the file's digest as sha256(1) does.
"""

import getopt
import hashlib
import json
import os
import subprocess
import sys


def main() -> int:
    name, args = os.path.basename(sys.argv[0]), sys.argv[1:]
    stub = os.environ["KREPLAY_STUB"]
    _log(stub, " ".join([name, *args]))
    if name == "ktrace":
        return _ktrace(stub, args)
    if name == "sha256":
        with open(args[-1], "rb") as f:
            print(hashlib.sha256(f.read()).hexdigest())
        return 0
    return _answer(stub, " ".join([name, *args]))


def _log(stub: str, line: str) -> None:
    with open(os.path.join(stub, "calls.log"), "a") as f:
        f.write(line + "\n")


def _answer(stub: str, call: str) -> int:
    with open(os.path.join(stub, "machine.json")) as f:
        machine = json.load(f)
    phase = "after" if os.path.exists(os.path.join(stub, "after-phase")) else "before"
    answer = machine.get(phase, {}).get(call, machine.get("any", {}).get(call))
    if answer is None:
        print(f"stub: nothing recorded for {call!r}", file=sys.stderr)
        return 127
    if "file" in answer:
        with open(answer["file"], "rb") as f:
            sys.stdout.buffer.write(f.read())
    sys.stdout.write(answer.get("text", ""))
    sys.stderr.write(answer.get("err", ""))
    return answer.get("rc", 0)


def _ktrace(stub: str, args: list[str]) -> int:
    options, command = getopt.getopt(args, "aCcdif:g:p:t:")
    trfile = dict(options).get("-f", "ktrace.out")
    with open(trfile, "wb") as f:
        f.write(b"stub ktrace.out: the trace kdump prints is a real sample\n")
    child = subprocess.Popen(command)
    while True:
        try:
            status = child.wait()
            break
        except KeyboardInterrupt:  # Ctrl-C reaches the group; ktrace(1) is the workload itself
            continue
    _log(stub, "ktrace: the workload ended")
    open(os.path.join(stub, "after-phase"), "w").close()
    return 128 - status if status < 0 else status  # killed by a signal: as sh reports it


if __name__ == "__main__":
    sys.exit(main())
