"""End-to-end tests of the web UI in a real browser (headless Debian Chromium through Playwright).

They drive the pages the way a data steward does: log in, create a product and its bands, upload real
GeoTIFFs and watch them ingest, read a failure from the events, share with another organization, manage
tokens. Screenshots of the main pages are saved under var/screenshots/.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import requests
from playwright.sync_api import expect

from tests.ui.conftest import PASSWORD

DATA = Path(__file__).resolve().parents[1] / "data"
RGB_BANDS = [("red", 0), ("green", 1), ("blue", 2)]

pytestmark = pytest.mark.django_db(transaction=True)


def make_rgb_product(user, local_id: str = "rgb", name: str = "RGB scenes"):
    """A product of `user` with the three Byte bands of tests/data/RGB.byte.tif."""
    from django.db import transaction

    from products.services import band_create, product_create

    with transaction.atomic():
        product = product_create(user=user, requested_id=local_id, attributes={"name": name})
        for band_name, index in RGB_BANDS:
            band_create(
                user=user,
                attributes={
                    "product_id": product.pk,
                    "name": band_name,
                    "type": "spectral",
                    "data_type": "Byte",
                    "band_index": index,
                    "data_range": [0, 255],
                },
            )
    return product


def upload_files(
    session,
    product_id: str,
    paths: list[Path],
    *,
    acquired: str = "2021-05-01T10:30",
    cloud_fraction: str = "0.1",
    multi: bool = False,
) -> None:
    page = session.page
    session.goto(f"/uploads/add/?product={product_id}")
    expect(page.locator("#id_product")).to_have_value(product_id)
    page.set_input_files("#file-input", [str(path) for path in paths])
    if multi:
        page.check("input[name=mode][value=multi]")
    page.fill("#id_acquired", acquired)
    page.fill("#id_cloud_fraction", cloud_fraction)
    page.click("#upload-start")


def wait_for_job(session, name: str, *, timeout: int = 90_000) -> str:
    """Wait until the upload of image `name` on the upload page is finished; returns its final status."""
    job = session.page.locator(f"[data-upload-job='{name}']")
    expect(job).to_have_attribute("data-status", re.compile("^(success|failure|canceled)$"), timeout=timeout)
    return job.get_attribute("data-status")


# ---- log in ------------------------------------------------------------------------------------------------
def test_login_rejects_a_wrong_password_then_shows_the_dashboard(open_browser, make_login_user):
    make_login_user("alice", org="acme", org_admin=True)
    session = open_browser()
    page = session.page
    session.goto("/products/")
    expect(page).to_have_url(re.compile(r"/login/\?next=/products/"))
    session.screenshot("01-login")
    page.fill("#id_username", "alice")
    page.fill("#id_password", "not the password")
    page.click("button[type=submit]")
    expect(page.locator(".form-errors")).to_contain_text("correct username and password")

    page.fill("#id_username", "alice")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(session.url("/products/"))
    session.goto("/")
    expect(page.locator("h1")).to_have_text("Dashboard")
    expect(page.locator(".user-menu")).to_contain_text("acme · admin")
    session.screenshot("02-dashboard-empty")

    # Keyboard: the first Tab reaches "Skip to content", which moves the focus to the page's main region;
    # the next Tabs walk the main actions, and Enter follows a focused link.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent.trim()") == "Skip to content"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "content"
    for _ in range(10):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent.trim()") == "New product":
            break
    page.keyboard.press("Enter")
    expect(page).to_have_url(session.url("/products/add/"))
    for _ in range(20):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "id_id":
            break
    assert page.evaluate("document.activeElement.id") == "id_id", "the product id field is not reachable by Tab"

    page.click("text=Log out")
    expect(page).to_have_url(re.compile(r"/login/$"))
    session.goto("/")
    expect(page).to_have_url(re.compile(r"/login/\?next=/$"))
    session.assert_no_console_errors()


# ---- products and bands ----------------------------------------------------------------------------------------
def test_create_a_product_and_bands_of_two_types_with_only_their_fields(open_browser, make_login_user):
    from products.models import Band, Product

    make_login_user("alice", org="acme", org_admin=True)
    session = open_browser()
    page = session.page
    session.login("alice")

    session.goto("/products/add/")
    expect(page.locator(".input-group .addon")).to_have_text("acme:")
    page.fill("#id_id", "sentinel-demo")
    page.fill("#id_name", "Sentinel demo")
    page.fill("#id_description", "Optical scenes for the UI test.")
    page.fill("#id_start_datetime", "2020-01-01T00:00")
    page.fill("#id_tags", "demo, optical")
    session.screenshot("03-product-form")
    page.click("text=Create product")
    expect(page).to_have_url(session.url("/products/acme:sentinel-demo/"))
    expect(page.locator(".messages")).to_contain_text("created")
    product = Product.objects.get(pk="acme:sentinel-demo")
    assert product.name == "Sentinel demo" and product.tags == ["demo", "optical"]
    assert product.namespace == "acme"

    # A spectral band: wavelength fields, no mask fields.
    page.click("text=Add band")
    page.click(".type-picker >> text=Spectral")
    expect(page.locator("#id_wavelength_nm_center")).to_be_visible()
    expect(page.locator("#id_is_alpha")).to_have_count(0)
    expect(page.locator("#id_colormap_name")).to_have_count(0)
    page.fill("#id_name", "red")
    page.select_option("#id_data_type", "UInt16")
    page.fill("#id_band_index", "0")
    page.fill("#id_data_range_0", "0")
    page.fill("#id_data_range_1", "10000")
    page.fill("#id_wavelength_nm_min", "636")
    page.fill("#id_wavelength_nm_max", "673")
    page.fill("#id_resolution_value", "30")
    session.screenshot("04-band-form-spectral")
    page.click("text=Add band")
    expect(page.locator("#bands")).to_contain_text("red")

    # A mask band: is_alpha, and no ranges (they are always [0, 1]) nor wavelengths.
    session.goto("/products/acme:sentinel-demo/bands/add/mask/")
    expect(page.locator("#id_is_alpha")).to_be_visible()
    expect(page.locator("#id_data_range_0")).to_have_count(0)
    expect(page.locator("#id_wavelength_nm_center")).to_have_count(0)
    page.fill("#id_name", "alpha")
    page.check("#id_is_alpha")
    page.fill("#id_band_index", "1")
    page.click("text=Add band")
    expect(page.locator("#bands")).to_contain_text("alpha")

    red = Band.objects.get(pk="acme:sentinel-demo:red")
    assert (red.type, red.data_type, red.data_range, red.wavelength_nm_min) == ("spectral", "UInt16", [0, 10000], 636)
    alpha = Band.objects.get(pk="acme:sentinel-demo:alpha")
    assert alpha.type == "mask" and alpha.is_alpha and alpha.data_range == [0.0, 1.0]
    assert Product.objects.get(pk="acme:sentinel-demo").resolution_min_value == 30

    # The API's validation shows as form errors: a duplicate name, and a range the wrong way round.
    session.goto("/products/acme:sentinel-demo/bands/add/spectral/")
    page.fill("#id_name", "red")
    page.fill("#id_data_range_0", "10")
    page.fill("#id_data_range_1", "1")
    page.click("text=Add band")
    expect(page.locator(".field.has-error")).to_contain_text("minimum is larger than the maximum")

    # Editing the product; the band shows up in the table by type.
    session.goto("/products/acme:sentinel-demo/edit/")
    page.fill("#id_name", "Sentinel demo (edited)")
    page.click("text=Save")
    expect(page.locator("h1")).to_have_text("Sentinel demo (edited)")
    expect(page.locator("table[aria-label='Spectral bands']")).to_contain_text("red")
    expect(page.locator("table[aria-label='Mask bands']")).to_contain_text("alpha")
    session.screenshot("05-product-detail-bands")
    session.assert_no_console_errors()


# ---- upload, ingest, map, preview --------------------------------------------------------------------------------
def test_upload_rgb_with_progress_then_footprint_on_the_map_and_preview(open_browser, make_login_user, job_worker):
    from imagery.models import Image

    alice = make_login_user("alice", org="acme", org_admin=True)
    product = make_rgb_product(alice)
    session = open_browser()
    page = session.page
    session.login("alice")

    upload_files(session, product.pk, [DATA / "RGB.byte.tif"])
    job = page.locator("[data-upload-job='RGB.byte']")
    expect(job).to_be_visible()
    assert wait_for_job(session, "RGB.byte") == "success", job.inner_text()
    # The transfer's progress bar reached the end, and the page links the new image.
    expect(job.locator(".progress")).to_have_attribute("aria-valuenow", "100")
    expect(job).to_contain_text("Ingested")
    session.screenshot("06-upload-success")

    image = Image.objects.get(pk=f"{product.pk}:RGB.byte")
    assert image.cloud_fraction == pytest.approx(0.1)
    assert image.acquired.isoformat().startswith("2021-05-01T10:30")

    # The product page: the image in the list, its footprint on the map (tiles unreachable, on purpose).
    session.goto(f"/products/{product.pk}/")
    footprints = page.locator("#footprints-map")
    expect(footprints).to_have_attribute("data-map-ready", "true")
    expect(footprints).to_have_attribute("data-feature-count", "1")
    expect(footprints.locator("path.leaflet-interactive")).to_have_count(1)
    # The image's own pixels are a tile layer from /raster/v2/tiles, drawn under the footprint outline.
    expect(footprints).to_have_attribute("data-imagery-loaded", "true")
    expect(footprints.locator("img.leaflet-tile-loaded[src*='/raster/v2/tiles/']").first).to_be_visible()
    expect(page.locator("#images table")).to_contain_text("RGB.byte")
    session.screenshot("07-product-detail-map")

    # Clicking the footprint opens the image; its preview is a real PNG and its footprint is mapped too.
    footprints.locator("path.leaflet-interactive").click()
    expect(page).to_have_url(session.url(f"/images/{image.pk}/"))
    preview = page.locator("#image-preview")
    expect(preview).to_be_visible()
    # Not page.wait_for_function: its polling predicate is compiled in the page, which our CSP (no
    # 'unsafe-eval') refuses whenever the image is not complete at the first check.
    expect(preview).to_have_js_property("complete", True)
    assert page.evaluate("document.getElementById('image-preview').naturalWidth") > 0
    expect(page.locator("#footprint-map path.leaflet-interactive")).to_have_count(1)
    expect(page.locator("#files-title")).to_be_visible()
    files_table = page.locator("section[aria-labelledby=files-title] table")
    expect(files_table).to_contain_text(image.files[0]["hash"])
    expect(page.locator("section[aria-labelledby=uploads-title]")).to_contain_text("success")
    session.screenshot("08-image-detail")

    # The image's file downloads as an attachment with the size the page shows.
    with page.expect_download() as download_info:
        files_table.get_by_role("link", name="Download").click()
    download = download_info.value
    assert download.suggested_filename == "RGB.byte-0.tif"
    assert Path(download.path()).stat().st_size == image.files[0]["size_bytes"]

    # The dashboard counts it.
    session.goto("/")
    expect(page.locator(".stat.success .value")).to_have_text("1")
    session.assert_no_console_errors()


def test_a_corrupt_file_fails_and_its_event_says_why(open_browser, make_login_user, job_worker):
    alice = make_login_user("alice", org="acme", org_admin=True)
    product = make_rgb_product(alice)
    session = open_browser()
    page = session.page
    session.login("alice")

    upload_files(session, product.pk, [DATA / "corrupt.tif"])
    assert wait_for_job(session, "corrupt") == "failure"
    job = page.locator("[data-upload-job='corrupt']")
    expect(job.locator(".message")).to_contain_text("could not be read")

    # The uploads list shows the failure first on the dashboard, and the detail page has the event timeline.
    session.goto("/")
    expect(page.locator("#recent-uploads + *, section[aria-labelledby=recent-uploads]").first).to_contain_text(
        "failure"
    )
    session.goto(f"/uploads/?product={product.pk}&status=failure")
    rows = page.locator("main table tbody tr")
    expect(rows).to_have_count(1)
    session.screenshot("09-uploads-list")
    rows.first.locator("a").first.click()
    expect(page.locator("#failure-message")).to_contain_text("InvalidFileError")
    timeline = page.locator("#events")
    expect(timeline.locator("li.sev-error")).to_have_count(2)
    expect(timeline.locator("li.sev-error").first).to_contain_text("tessera-ingest")
    expect(timeline).to_contain_text("queue")
    expect(page.locator("#cancel-upload")).to_have_count(0)
    session.screenshot("10-upload-failure-events")
    session.assert_no_console_errors()


def test_upload_detail_refreshes_itself_and_cancel_where_allowed(open_browser, make_login_user):
    """A transferring upload (made with the API's service, as a client that has not sent its bytes yet)."""
    from django.db import transaction

    from uploads.models import ImageUpload
    from uploads.services import UploadSpec, image_upload_create

    alice = make_login_user("alice", org="acme", org_admin=True)
    product = make_rgb_product(alice)
    spec = UploadSpec(
        product_id=product.pk,
        image_name="later",
        image_attributes={"acquired": "2021-01-01"},
        upload_type="file",
        image_files=["later.tif"],
        overviews=[],
        overview_resampler=None,
        upload_size=None,
    )
    with transaction.atomic():
        upload, _ = image_upload_create(user=alice, spec=spec)
    session = open_browser()
    page = session.page
    session.login("alice")
    session.goto(f"/uploads/{upload.pk}/")
    expect(page.locator("#status-title .badge")).to_have_text("transferring")
    expect(page.locator("#upload-live")).to_contain_text("refreshing")
    # The page re-fetches its live part: a change made elsewhere (here, the cancel service) appears by itself.
    page.click("#cancel-upload")
    expect(page.locator(".messages")).to_contain_text("Upload canceled")
    expect(page.locator("#status-title .badge")).to_have_text("canceled")
    expect(page.locator("#events")).to_contain_text("Canceled by the user")
    expect(page.locator("#cancel-upload")).to_have_count(0)
    assert ImageUpload.objects.get(pk=upload.pk).status == "canceled"

    with transaction.atomic():
        second, _ = image_upload_create(user=alice, spec=UploadSpec(**{**spec.__dict__, "image_name": "later2"}))
    session.goto(f"/uploads/{second.pk}/")
    expect(page.locator("#status-title .badge")).to_have_text("transferring")
    from uploads.services import image_upload_cancel

    image_upload_cancel(upload=second)
    expect(page.locator("#status-title .badge")).to_have_text("canceled", timeout=15_000)
    session.assert_no_console_errors()


# ---- sharing -----------------------------------------------------------------------------------------------------
def test_share_with_another_organization_visible_to_it_and_not_to_a_third(open_browser, make_login_user, job_worker):
    from imagery.models import Image
    from products.models import Band

    alice = make_login_user("alice", org="acme", org_admin=True)
    make_login_user("bob", org="acme")
    make_login_user("carol", org="globex")
    make_login_user("dave", org="initech")
    product = make_rgb_product(alice, local_id="shared", name="Shared scenes")

    owner = open_browser()
    page = owner.page
    owner.login("alice")
    owner.goto(f"/products/{product.pk}/share/")
    # The picker lists alice's organization and its members, never other organizations.
    options = page.locator("#principal-choice option").all_inner_texts()
    assert any("bob" in option for option in options)
    assert not any("carol" in option or "globex" in option for option in options)
    # An invalid principal is refused with the API's message.
    page.fill("#id_readers", "nonsense")
    page.click("text=Save sharing")
    expect(page.locator(".field.has-error")).to_contain_text("not a valid principal")
    # Typed into the picker: another organization as readers.
    page.fill("#id_readers", "")
    page.fill("#principal-typed", "org:globex")
    page.select_option("#principal-role", "readers")
    page.click("[data-principal-add]")
    expect(page.locator("#id_readers")).to_have_value("org:globex")
    owner.screenshot("11-share")
    page.click("text=Save sharing")
    expect(page.locator(".messages")).to_contain_text("Sharing of acme:shared saved")
    expect(page.locator("section[aria-labelledby=sharing]")).to_contain_text("org:globex")

    # "Apply to all bands and images" ran the job.
    def propagated():
        return all("org:globex" in band.readers for band in Band.objects.filter(product=product))

    from tests.uploads.helpers import eventually

    eventually(propagated, timeout=20, message="ACL propagation to the bands")
    assert Image.objects.filter(product=product).count() == 0

    # carol (globex) finds it; dave (initech) sees no trace of it anywhere.
    reader = open_browser()
    reader.login("carol")
    reader.goto("/products/")
    expect(reader.page.locator("main table")).to_contain_text("Shared scenes")
    reader.goto(f"/products/{product.pk}/")
    expect(reader.page.locator("h1")).to_have_text("Shared scenes")
    expect(reader.page.locator("a:text('Share')")).to_have_count(0)
    reader.screenshot("12-product-as-reader")
    response = reader.goto(f"/products/{product.pk}/edit/")
    assert response.status == 403

    stranger = open_browser()
    stranger.login("dave")
    stranger.goto("/products/")
    expect(stranger.page.locator("main")).not_to_contain_text("Shared scenes")
    expect(stranger.page.locator("main")).to_contain_text("No products yet")
    response = stranger.goto(f"/products/{product.pk}/")
    assert response.status == 404
    expect(stranger.page.locator("h1")).to_have_text("Not found")
    stranger.goto("/")
    expect(stranger.page.locator(".stat").first).to_contain_text("0")
    stranger.goto("/uploads/add/")
    expect(stranger.page.locator("main")).not_to_contain_text("acme:shared")
    stranger.screenshot("13-product-hidden-from-third-org")
    for session in (owner, reader, stranger):
        session.assert_no_console_errors()


# ---- tokens ------------------------------------------------------------------------------------------------------
def test_create_a_refresh_token_with_its_snippet_then_revoke_it(open_browser, make_login_user, live_server):
    make_login_user("alice", org="acme", org_admin=True)
    session = open_browser()
    page = session.page
    session.login("alice")
    session.goto("/account/tokens/")
    page.fill("#id_name", "laptop notebook")
    page.click("text=Create token")
    secret = page.locator("#token-secret").inner_text().strip()
    assert secret.startswith("tsr_")
    snippet = page.locator("#client-snippet").inner_text()
    assert f"export DESCARTESLABS_REFRESH_TOKEN={secret}" in snippet
    assert f"export DESCARTESLABS_CATALOG_V2_URL={live_server.url}/metadata/v1/catalog/v2" in snippet
    assert "export DESCARTESLABS_CLIENT_ID=tessera" in snippet
    session.screenshot("14-api-access-new-token")

    # The token works at POST /token, as the client uses it...
    body = {"grant_type": "refresh_token", "client_id": "tessera", "refresh_token": secret}
    assert requests.post(f"{live_server.url}/token", json=body, timeout=10).status_code == 200

    # ...until it is revoked here. The secret is never shown again.
    session.goto("/account/tokens/")
    expect(page.locator("#token-secret")).to_have_count(0)
    row = page.locator(f"tr[data-token-prefix='{secret[:10]}']")
    expect(row).to_contain_text("active")
    expect(row).not_to_contain_text("never used")
    row.locator("text=Revoke").click()
    expect(page.locator(".messages")).to_contain_text("revoked")
    expect(page.locator(f"tr[data-token-prefix='{secret[:10]}']")).to_contain_text("revoked")
    answer = requests.post(f"{live_server.url}/token", json=body, timeout=10)
    assert answer.status_code == 401 and answer.json()["error"] == "invalid_grant"
    session.screenshot("15-api-access-revoked")
    session.assert_no_console_errors()


# ---- deleting a product with content -------------------------------------------------------------------------------
def test_delete_explains_the_conflict_and_deletes_bands_and_images_with_progress(
    open_browser, make_login_user, job_worker
):
    from products.models import Band, Product

    alice = make_login_user("alice", org="acme", org_admin=True)
    product = make_rgb_product(alice, local_id="doomed", name="Doomed")
    session = open_browser()
    page = session.page
    session.login("alice")
    session.goto(f"/products/{product.pk}/")
    page.click("main .actions >> text=Delete")
    expect(page.locator(".notice.warning")).to_contain_text("still has 3 bands and 0 images")
    # Trying anyway answers the API's 409, in words.
    page.click("button:text('Delete product')")
    expect(page.locator("#delete-conflict")).to_contain_text("can only be deleted once it is empty")
    session.screenshot("16-product-delete-conflict")
    page.click("button:text('Delete all bands and images')")
    # The job runs with a progress bar; when done the page reloads without the related objects.
    expect(page.locator(".messages")).to_contain_text("Deleting all bands and images in the background")
    expect(page.locator("main")).to_contain_text("The product is empty", timeout=30_000)
    assert not Band.objects.filter(product_id=product.pk).exists()
    page.click("button:text('Delete product')")
    expect(page).to_have_url(session.url("/products/"))
    expect(page.locator(".messages")).to_contain_text("deleted")
    assert not Product.objects.filter(pk=product.pk).exists()
    session.assert_no_console_errors()


# ---- organization admin ----------------------------------------------------------------------------------------
def test_organization_admin_manages_roles_and_groups(open_browser, make_login_user):
    from accounts.models import Group, Membership

    make_login_user("alice", org="acme", org_admin=True)
    bob = make_login_user("bob", org="acme")
    make_login_user("carol", org="globex")
    session = open_browser()
    page = session.page
    session.login("alice")
    session.goto("/organization/")
    expect(page.locator("main table").first).to_contain_text("bob")
    expect(page.locator("main")).not_to_contain_text("carol")

    page.fill("#id_name", "analysts")
    page.click("button:text('Create')")
    expect(page.locator("h1")).to_have_text("Group analysts")
    page.check("label:text('bob') >> xpath=../input")
    page.click("text=Save members")
    expect(page.locator(".messages")).to_contain_text("Members of acme:analysts saved")
    assert list(Group.objects.get(name="analysts").members.values_list("username", flat=True)) == ["bob"]

    bob_membership = Membership.objects.get(user=bob)
    page.select_option(f"#id_m{bob_membership.pk}-role", "org-admin")
    page.locator(f"form[action$='/members/{bob_membership.pk}/role/'] button").click()
    expect(page.locator(".messages")).to_contain_text("bob is now organization admin")
    assert Membership.objects.get(user=bob).role == "org-admin"
    session.screenshot("17-organization")

    # bob, a member before and an admin now, sees the admin controls; carol sees only her own organization.
    other = open_browser()
    other.login("carol")
    other.goto("/organization/")
    expect(other.page.locator("main")).not_to_contain_text("analysts")
    response = other.goto(f"/organization/groups/{Group.objects.get(name='analysts').pk}/")
    assert response.status == 404
    session.assert_no_console_errors()


def test_pages_are_usable_on_a_phone_sized_screen(open_browser, make_login_user):
    alice = make_login_user("alice", org="acme", org_admin=True)
    product = make_rgb_product(alice)
    session = open_browser(width=390, height=844)
    session.login("alice")
    session.goto(f"/products/{product.pk}/")
    # Nothing is wider than the screen: tables scroll inside their cards.
    assert session.page.evaluate("document.documentElement.scrollWidth") <= 390
    session.screenshot("18-product-detail-phone")
    session.assert_no_console_errors()
