"""A stand-in for the ingest child that allocates far more than RLIMIT_AS allows (run through the sandbox)."""

import sys

sys.stdin.read()
hoard = bytearray(8 * 1024**3)
sys.stdout.write(str(len(hoard)))
