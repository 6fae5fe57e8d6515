"""A stand-in for the ingest child that never finishes on its own (for timeout and lease tests)."""

import sys
import time

sys.stdin.read()
time.sleep(600)
