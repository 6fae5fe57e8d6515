"""Fixtures of the web UI tests: users with passwords, a live server, Debian's Chromium through Playwright,
an in-process dramatiq worker for ingest and product jobs, and screenshots under var/screenshots/.

The browser is the system's `/usr/bin/chromium` (Debian package, installed by bin/deps.sh); Playwright's
Python wheel only brings the driver, nothing is downloaded at test time.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

PASSWORD = "Tessera-ui-test-2024"
CHROMIUM = os.environ.get("TESSERA_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
# Map tiles must fail deterministically (no network in CI, and never load a third party's tiles from tests):
# the maps have to work without them. Nothing listens on port 9 (discard) of the loopback address.
UNREACHABLE_TILES = "http://127.0.0.1:9/{z}/{x}/{y}.png"


@pytest.fixture(autouse=True)
def ui_settings(settings, tmp_path):
    """Per-test storage and scratch space (as the upload tests use), unreachable basemap tiles."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.STORAGES = {
        **settings.STORAGES,
        "imagery": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "media" / "imagery"), "base_url": None},
        },
    }
    settings.UPLOAD_SPOOL_DIR = str(tmp_path / "spool")
    settings.INGEST_WORK_DIR = str(tmp_path / "work")
    settings.INGEST_CHILD_TIMEOUT = 60
    settings.BASEMAP_URL = UNREACHABLE_TILES
    return settings


@pytest.fixture
def make_login_user(db):
    """`make_login_user(username, org=None, org_admin=False, groups=()) -> User` with the test password."""
    from accounts.services import organization_create, user_create_or_update

    def make(username: str, *, org: str | None = None, org_admin: bool = False, groups=()):
        organization = organization_create(slug=org, name=f"{org.title()} Inc.") if org else None
        return user_create_or_update(
            username=username,
            email=f"{username}@{org or 'example'}.test",
            organization=organization,
            is_org_admin=org_admin,
            groups=groups,
            password=PASSWORD,
        )

    return make


@pytest.fixture(scope="session")
def live_server():
    """pytest-django's live server on 127.0.0.1 (its default host is `localhost`); each test using it is
    transactional through pytest-django's `_live_server_helper`."""
    from pytest_django.live_server_helper import LiveServer

    server = LiveServer("127.0.0.1:0")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def browser():
    """Headless Debian Chromium driven by Playwright, shared by the session's UI tests."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (bin/deps.sh does, `make test` runs it).")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the ORM calls of the tests themselves are
    # synchronous and safe, so Django's "async context" guard is lifted while the browser is up.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    playwright = sync_playwright().start()
    chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
    yield chromium
    chromium.close()
    playwright.stop()
    if previous is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


class BrowserSession:
    """One user's browser tab against the live server, recording console errors (CSP violations, JS errors)."""

    def __init__(self, context, base_url: str):
        self.context = context
        self.base_url = base_url
        self.page = context.new_page()
        self.page.set_default_timeout(20_000)
        self.console_errors: list[str] = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.console_errors.append(f"page error: {error}"))
        # Confirmation dialogs (deletions, revocations) are answered "yes".
        self.page.on("dialog", lambda dialog: dialog.accept())

    def _console(self, message) -> None:
        text = message.text
        if message.type != "error":
            return
        # Map tiles fail on purpose (UNREACHABLE_TILES).
        if "127.0.0.1:9/" in text or "ERR_CONNECTION_REFUSED" in text:
            return
        # A 403/404 page the test navigated to on purpose (it asserts the status itself).
        if "the server responded with a status of" in text and message.location.get("url") == self.page.url:
            return
        self.console_errors.append(text)

    def url(self, path: str) -> str:
        return self.base_url + path

    def goto(self, path: str):
        return self.page.goto(self.url(path))

    def login(self, username: str, password: str = PASSWORD) -> None:
        self.goto("/login/")
        self.page.fill("#id_username", username)
        self.page.fill("#id_password", password)
        self.page.click("button[type=submit]")
        self.page.wait_for_url(self.url("/"))

    def screenshot(self, name: str) -> Path:
        """Save a full-page screenshot as var/screenshots/<name>.png (kept as a test artifact)."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def assert_no_console_errors(self) -> None:
        assert not self.console_errors, f"browser console errors: {self.console_errors}"


@pytest.fixture
def open_browser(browser, live_server, transactional_db):
    """`open_browser() -> BrowserSession`: a fresh browser context (own cookies) per call."""
    contexts = []

    def make(*, width: int = 1360, height: int = 900) -> BrowserSession:
        context = browser.new_context(viewport={"width": width, "height": height}, accept_downloads=True)
        contexts.append(context)
        return BrowserSession(context, live_server.url)

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def job_worker(transactional_db):
    """An in-process dramatiq worker for ingest and product jobs, on this test session's own queues."""
    import dramatiq

    from products.tasks import run_product_task
    from uploads.tasks import ingest_image_upload

    broker = dramatiq.get_broker()
    try:
        # Redis answers PING; RabbitMQ (BROKER_URL=amqp://…) already connected to declare the queue.
        if hasattr(broker, "client"):
            broker.client.ping()
    except Exception as exc:  # noqa: BLE001 - any connection problem means the same thing here
        pytest.fail(f"the dramatiq broker (Redis at REDIS_URL) is not reachable: {exc}")
    queues = {ingest_image_upload.queue_name, run_product_task.queue_name}
    for queue in queues:
        broker.declare_queue(queue)
    worker = dramatiq.Worker(broker, queues=queues, worker_threads=2, worker_timeout=100)
    worker.start()
    yield worker
    worker.stop(timeout=30_000)
    for queue in queues:
        broker.flush(queue)


@pytest.fixture(scope="session", autouse=True)
def fresh_screenshots():
    """Start each session with an empty screenshot folder, so what is there belongs to the last run."""
    if SCREENSHOTS.exists():
        shutil.rmtree(SCREENSHOTS)
    yield
