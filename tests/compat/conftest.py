"""Fixtures of the client compatibility suite: a live server, a job worker, and `run_flow`.

The suite drives the real, unmodified `descarteslabs` client against a real HTTP server:

* `live_server` (overriding pytest-django's, same mechanics) serves the project's WSGI app from a thread
  on 127.0.0.1 and a free port, against the test database. Using it makes the test transactional, so
  rows the test creates (users) are committed and visible to the server, and the server's rows to us.
* every flow is a separate Python process (`tests/compat/flows/<name>.py`) configured through
  environment variables only, exactly as a user's shell would configure the client.
* every HTTP exchange with the live server is recorded (`ExchangeLog`); when a flow fails, the test
  failure shows the exchanges that went wrong (request and response bodies) and server-side errors.
  A 5xx from the server stops the flow right away: the client would otherwise retry it for ~10 s and
  then raise an uninformative `RetryError`.

Run: `eval "$(bin/services.sh env)" && TESSERA_TESTING=1 .venv/bin/pytest tests/compat -q`. The product-job
test needs Redis (REDIS_URL). When several pytest runs share one PostgreSQL, give this one its own test
database through the database name, e.g. `DATABASE_URL=postgis://postgres@127.0.0.1:54329/tessera_compat`
(pytest-django then uses `test_tessera_compat`).
"""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

FLOWS_DIR = Path(__file__).parent / "flows"
FLOW_TIMEOUT = 120  # seconds; a flow normally takes a few seconds
# After the server answered 5xx, the flow gets this long to report it itself before it is stopped.
SERVER_ERROR_GRACE = 1.0
MAX_BODY = 3000  # characters of a request/response body kept per exchange

# Everything the client could read from the developer's environment or home directory.
CLIENT_ENV_PREFIXES = ("DESCARTESLABS_",)
CLIENT_ENV_NAMES = {"CLIENT_ID", "CLIENT_SECRET"}


# --- recording the server side ------------------------------------------------------------------


@dataclass
class Exchange:
    method: str
    path: str
    request_body: str
    status: int | None = None
    response_body: str = ""
    thread: str = ""

    def render(self) -> str:
        lines = [f"{self.method} {self.path} -> {self.status}"]
        if self.request_body:
            lines.append(f"    request:  {self.request_body}")
        if self.response_body and (self.status or 0) >= 400:
            lines.append(f"    response: {self.response_body}")
        return "\n".join(lines)


@dataclass
class ExchangeLog:
    """HTTP exchanges and server-side log records (WARNING and above) since the last `clear()`."""

    exchanges: list[Exchange] = field(default_factory=list)
    records: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def clear(self) -> None:
        with self.lock:
            self.exchanges.clear()
            self.records.clear()

    def add(self, exchange: Exchange) -> None:
        with self.lock:
            self.exchanges.append(exchange)

    def server_errors(self) -> list[Exchange]:
        with self.lock:
            return [e for e in self.exchanges if (e.status or 0) >= 500]

    def report(self, *, last: int = 15) -> str:
        with self.lock:
            failed = [e for e in self.exchanges if (e.status or 0) >= 400]
            recent = self.exchanges[-last:]
            records = list(self.records)
        parts = [f"--- server: {len(self.exchanges)} requests, {len(failed)} answered >= 400 ---"]
        parts.extend(e.render() for e in failed)
        parts.append(f"--- server: last {len(recent)} requests ---")
        parts.extend(f"{e.method} {e.path} -> {e.status}" for e in recent)
        if records:
            parts.append("--- server log (WARNING and above) ---")
            parts.extend(records)
        return "\n".join(parts)


def _truncate(raw: bytes) -> str:
    text = raw.decode("utf-8", errors="replace")
    return text if len(text) <= MAX_BODY else text[:MAX_BODY] + f"... [{len(text)} chars]"


class RecordingApp:
    """WSGI middleware that records method, path, bodies and status of every request."""

    def __init__(self, app, log: ExchangeLog):
        self.app = app
        self.log = log

    def __call__(self, environ, start_response):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length > 0 else b""
        environ["wsgi.input"] = io.BytesIO(body)
        path = environ.get("PATH_INFO", "")
        if environ.get("QUERY_STRING"):
            path += "?" + environ["QUERY_STRING"]
        exchange = Exchange(
            method=environ.get("REQUEST_METHOD", "?"),
            path=path,
            request_body=_truncate(body),
            thread=threading.current_thread().name,
        )

        def recording_start_response(status, headers, exc_info=None):
            exchange.status = int(status.split()[0])
            return start_response(status, headers, exc_info)

        chunks: list[bytes] = []
        result = self.app(environ, recording_start_response)
        try:
            for chunk in result:
                chunks.append(chunk)
                yield chunk
        finally:
            # Django sends request_finished (closing DB connections) from the response's close().
            if hasattr(result, "close"):
                result.close()
            exchange.response_body = _truncate(b"".join(chunks))
            self.log.add(exchange)


class RecordingHandler(logging.Handler):
    def __init__(self, log: ExchangeLog):
        super().__init__(level=logging.WARNING)
        self.log = log
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s [%(threadName)s]: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        # 4xx are in the exchange list already; keep errors and non-request warnings.
        if record.name == "django.request" and record.levelno < logging.ERROR:
            return
        try:
            text = self.format(record)
        except Exception:  # noqa: BLE001 - a broken record must not break the server under test
            text = f"{record.levelname} {record.name}: <unformattable record>"
        with self.log.lock:
            self.log.records.append(text)


_exchange_log = ExchangeLog()


@pytest.fixture(scope="session")
def live_server():
    """pytest-django's live server, on 127.0.0.1 and a free port, with every exchange recorded.

    Overrides pytest-django's fixture of the same name (whose default host is `localhost`), so its
    `_live_server_helper` still makes each test that uses it transactional.
    """
    from pytest_django.live_server_helper import LiveServer

    server = LiveServer("127.0.0.1:0")
    httpd = server.thread.httpd
    httpd.set_app(RecordingApp(httpd.get_app(), _exchange_log))
    yield server
    server.stop()


@pytest.fixture
def exchange_log(live_server) -> Iterator[ExchangeLog]:
    """The recorded exchanges and server log records of the current test."""
    handler = RecordingHandler(_exchange_log)
    root = logging.getLogger()
    root.addHandler(handler)
    _exchange_log.clear()
    yield _exchange_log
    root.removeHandler(handler)


@dataclass
class CompatServer:
    url: str

    @property
    def catalog_url(self) -> str:
        from django.conf import settings

        return f"{self.url}/{settings.CATALOG_URL_PREFIX}"

    @property
    def raster_url(self) -> str:
        return f"{self.url}/raster/v2"


@pytest.fixture
def compat_server(live_server, exchange_log, transactional_db) -> CompatServer:
    return CompatServer(url=live_server.url)


# --- the job worker -----------------------------------------------------------------------------


@pytest.fixture
def dramatiq_worker(compat_server, monkeypatch):
    """An in-process dramatiq worker consuming the product-job queue while the test runs.

    The actor's queue is renamed for the duration of the test, so neither another worker on the same
    Redis steals this test's jobs nor this worker runs jobs enqueued by someone else.
    """
    import dramatiq

    from products.tasks import run_product_task

    broker = dramatiq.get_broker()
    queue = f"compat-{uuid.uuid4().hex[:12]}-{run_product_task.queue_name}"
    monkeypatch.setattr(run_product_task, "queue_name", queue)
    broker.declare_queue(queue)
    try:
        # Redis answers PING; RabbitMQ (BROKER_URL=amqp://…) already connected to declare the queue.
        if hasattr(broker, "client"):
            broker.client.ping()
    except Exception as exc:  # noqa: BLE001
        pytest.fail(f"the dramatiq broker (Redis at REDIS_URL) is not reachable: {exc}")
    worker = dramatiq.Worker(broker, queues={queue}, worker_threads=1, worker_timeout=100)
    worker.start()
    yield worker
    worker.stop(timeout=10_000)
    broker.flush(queue)


# --- running flows ------------------------------------------------------------------------------


class FlowResult(subprocess.CompletedProcess):
    """A finished flow: `returncode`, `stdout`, `stderr`, plus what the server saw meanwhile."""

    def __init__(self, name: str, args, returncode: int, stdout: str, stderr: str, server_report: str, note: str = ""):
        super().__init__(args, returncode, stdout, stderr)
        self.name = name
        self.server_report = server_report
        self.note = note

    def assert_ok(self) -> None:
        """Fail the test with the flow's output and the server's side unless the flow exited 0."""
        if self.returncode != 0 or not self.stdout.rstrip().endswith("FLOW OK"):
            pytest.fail(self.describe(), pytrace=False)

    def describe(self) -> str:
        return "\n".join(
            [
                f"flow {self.name!r} exited with {self.returncode}" + (f" ({self.note})" if self.note else ""),
                "--- stdout ---",
                self.stdout.rstrip(),
                "--- stderr ---",
                self.stderr.rstrip(),
                self.server_report,
            ]
        )


def _client_free_environment() -> dict[str, str]:
    return {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(CLIENT_ENV_PREFIXES) and name not in CLIENT_ENV_NAMES
    }


@pytest.fixture
def run_flow(compat_server, exchange_log, token_for, tmp_path_factory):
    """`run_flow(name, user=None, **env) -> FlowResult`: run `flows/<name>.py` as a separate process.

    The process gets the live server's URLs, an access token of `user` (if given), a fresh HOME, and the
    extra variables `env` (None values remove a variable). `result.assert_ok()` fails the test, showing
    the flow's output and the server side, unless the flow exited 0.
    """

    def run(name: str, user=None, *, timeout: float = FLOW_TIMEOUT, **extra: str | None) -> FlowResult:
        script = FLOWS_DIR / f"{name}.py"
        assert script.is_file(), f"no flow script {script}"
        home = tmp_path_factory.mktemp(f"home-{name}")
        environment = _client_free_environment()
        environment.update(
            {
                "HOME": str(home),
                "DESCARTESLABS_CATALOG_V2_URL": compat_server.catalog_url,
                "DESCARTESLABS_RASTER_URL": compat_server.raster_url,
                "DESCARTESLABS_IAM_URL": compat_server.url,
                "DESCARTESLABS_NO_JWT_CACHE": "true",
                "PYTHONUNBUFFERED": "1",
                "PYTHONDONTWRITEBYTECODE": "1",
            }
        )
        if user is not None:
            environment["DESCARTESLABS_TOKEN"] = token_for(user)
        for key, value in extra.items():
            if value is None:
                environment.pop(key, None)
            else:
                environment[key] = str(value)

        exchange_log.clear()
        args = [sys.executable, str(script)]
        note = ""
        with subprocess.Popen(
            args, cwd=home, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        ) as process:
            collector = _Collector(process)
            deadline = time.monotonic() + timeout
            server_error_at = None
            while process.poll() is None:
                now = time.monotonic()
                if now > deadline:
                    note = f"killed after the {timeout:.0f} s timeout"
                    break
                if server_error_at is None and exchange_log.server_errors():
                    server_error_at = now
                if server_error_at is not None and now - server_error_at > SERVER_ERROR_GRACE:
                    note = "stopped: the server answered 5xx (see the exchanges below)"
                    break
                time.sleep(0.05)
            if process.poll() is None:
                process.kill()
            returncode = process.wait()
            stdout, stderr = collector.join()
        if note and returncode == 0:
            returncode = -9
        return FlowResult(name, args, returncode, stdout, stderr, exchange_log.report(), note)

    return run


class _Collector:
    """Reads a process's stdout and stderr in threads, so a chatty flow never blocks on a full pipe."""

    def __init__(self, process: subprocess.Popen):
        self.out: list[str] = []
        self.err: list[str] = []
        self.threads = [
            threading.Thread(target=self._read, args=(process.stdout, self.out), daemon=True),
            threading.Thread(target=self._read, args=(process.stderr, self.err), daemon=True),
        ]
        for thread in self.threads:
            thread.start()

    @staticmethod
    def _read(stream, sink: list[str]) -> None:
        for line in stream:
            sink.append(line)

    def join(self) -> tuple[str, str]:
        for thread in self.threads:
            thread.join(timeout=5)
        return "".join(self.out), "".join(self.err)
