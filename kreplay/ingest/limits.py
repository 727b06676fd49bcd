"""What the store's columns hold, as every reader checks it: a value beyond these is an
error of its line (text) or record (binary), never a changed value (docs/schema.md)."""

# Timestamps are stored as signed 64-bit nanoseconds: from this many seconds on they do
# not fit (about 292 years from 1970, either way).
MAX_TS_SECONDS = 9_223_372_036
# pid_t and lwpid_t are 32-bit integers.
MAX_ID = 2**31 - 1
