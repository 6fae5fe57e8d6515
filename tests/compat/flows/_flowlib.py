"""Shared helpers of the client flow scripts (imported by them as a sibling module, never by pytest).

A flow script is an ordinary program a catalog user could write: it configures nothing in code, the
unmodified `descarteslabs` client reads its endpoints and credentials from the environment
(`DESCARTESLABS_CATALOG_V2_URL`, `DESCARTESLABS_TOKEN`, ...). Inputs chosen by the test (other users' org
slugs, product ids) arrive as `COMPAT_*` environment variables.

`run(main)` runs a flow and turns its outcome into an exit status: 0 on success, 1 on a failed `assert`
or an unexpected client exception, 3 when the server kept answering 5xx (the client's retries gave up).
`check(part, ...)` runs an independent part of a flow so that its failure is reported without stopping
the parts after it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import sys
import traceback
import uuid
import warnings
from collections.abc import Callable, Iterator
from typing import TypeVar

T = TypeVar("T")

UTC = dt.UTC

# Set before the flow imports descarteslabs (flows import this module first).
# descarteslabs 3.2.2 imports pkg_resources, which warns on every start; keep the output readable.
warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
# A links.next the client cannot use as is (protocol §2.2) is only a warning in the client: make it fatal.
warnings.filterwarnings("error", message="Continuation URL")

EXIT_FAILED = 1
EXIT_SERVER_ERROR = 3


def step(message: str) -> None:
    """Print one progress line (flushed, so the test shows how far a killed flow got)."""
    sys.stdout.write(f"--> {message}\n")
    sys.stdout.flush()


def note(message: str) -> None:
    sys.stdout.write(f"    {message}\n")
    sys.stdout.flush()


def env(name: str) -> str:
    """A required `COMPAT_*` input of the flow."""
    value = os.environ.get(name)
    assert value, f"the test must set the environment variable {name}"
    return value


def unique(prefix: str) -> str:
    """A name no other flow (or earlier run) uses: `<prefix>-<12 hex digits>`."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def assert_utc_datetime(value: object, what: str) -> None:
    assert isinstance(value, dt.datetime), f"{what} should come back as a datetime, got {value!r}"
    assert value.tzinfo is not None and value.utcoffset() == dt.timedelta(0), (
        f"{what} should be a UTC-aware datetime, got {value!r}"
    )


@contextlib.contextmanager
def raises(exc_type: type[BaseException], what: str, *, match: str | None = None) -> Iterator[list]:
    """Assert that the block raises `exc_type` (whose message contains `match`); yields [exception]."""
    caught: list[BaseException] = []
    try:
        yield caught
    except exc_type as exc:
        caught.append(exc)
        if match is not None:
            assert match.lower() in str(exc).lower(), (
                f"{what}: expected {exc_type.__name__} mentioning {match!r}, got: {exc}"
            )
        note(f"{what}: raised {type(exc).__name__} as expected: {str(exc).strip()[:200]}")
        return
    except Exception as exc:
        raise AssertionError(
            f"{what}: expected {exc_type.__name__}, got {type(exc).__name__}: {str(exc).strip()[:500]}"
        ) from exc
    raise AssertionError(f"{what}: expected {exc_type.__name__}, but nothing was raised")


_failures: list[str] = []


def check(function: Callable[..., T], *args, **kwargs) -> T | None:
    """Run one independent part of a flow; a failed assertion or client error is reported, and the flow goes on.

    The flow still exits non-zero at the end (listing every failed part), but one server bug no longer hides
    the behaviour the later parts check. A 5xx (RetryError) or an unexpected exception stops the flow.
    """
    from descarteslabs.exceptions import ClientError

    try:
        return function(*args, **kwargs)
    except (AssertionError, ClientError) as exc:
        traceback.print_exc()
        message = f"{function.__name__}: {type(exc).__name__}: {str(exc).strip()}"
        sys.stdout.write(f"CHECK FAILED: {message}\n")
        _failures.append(message)
        return None


def _check_environment() -> None:
    """The flow must be configured like a user's shell: env vars only, no client id unless refresh flow."""
    assert os.environ.get("DESCARTESLABS_CATALOG_V2_URL"), "DESCARTESLABS_CATALOG_V2_URL is not set"
    if not os.environ.get("DESCARTESLABS_REFRESH_TOKEN"):
        for name in ("CLIENT_ID", "DESCARTESLABS_CLIENT_ID"):
            assert name not in os.environ, f"{name} must not be set (the client would drop the token)"
    from descarteslabs.config import get_settings

    configured = get_settings().catalog_v2_url
    assert configured == os.environ["DESCARTESLABS_CATALOG_V2_URL"], (
        f"the client did not pick up DESCARTESLABS_CATALOG_V2_URL: it uses {configured!r}"
    )


def run(main: Callable[[], None]) -> None:
    """Run a flow's `main` and exit with its status."""
    try:
        _check_environment()
        main()
    except AssertionError as exc:
        traceback.print_exc()
        sys.stdout.write(f"FLOW FAILED: {exc}\n")
        sys.exit(EXIT_FAILED)
    except Exception as exc:
        traceback.print_exc()
        from requests.exceptions import RetryError

        if isinstance(exc, RetryError):
            sys.stdout.write(f"FLOW FAILED: the server kept answering 5xx, the client gave up: {exc}\n")
            sys.exit(EXIT_SERVER_ERROR)
        sys.stdout.write(f"FLOW FAILED: unexpected {type(exc).__name__}: {str(exc).strip()}\n")
        sys.exit(EXIT_FAILED)
    if _failures:
        sys.stdout.write(f"FLOW FAILED: {len(_failures)} check(s) failed:\n")
        for message in _failures:
            sys.stdout.write(f"  - {message}\n")
        sys.exit(EXIT_FAILED)
    sys.stdout.write("FLOW OK\n")
    sys.exit(0)
