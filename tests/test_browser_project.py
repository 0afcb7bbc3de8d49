"""A bad upload followed by a good one, through Chromium's file chooser (issue 13 item 6): the
bad batch is reported and leaves nothing behind, the good one is added. Skipped where Chromium
is missing."""

from __future__ import annotations

import time

import numpy as np
import pytest
import tifffile

from svetlana_core.store import Project
from tests.browser_server import app_server, browser_page, chromium_missing

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(chromium_missing() is not None,
                                 reason=chromium_missing() or "")]


def _upload(page, paths) -> None:
    """Choose `paths` in the Project page's uploader and press Upload, check and add."""
    page.get_by_role("tab", name="Upload files").click()
    uploader = page.locator("[data-testid='stFileUploader']").filter(
        has_text="Images and masks (paired by file name)")
    uploader.locator("input[type='file']").set_input_files([str(path) for path in paths])
    for path in paths:  # the chooser has handed every file to the page
        uploader.get_by_text(path.name, exact=True).wait_for()
    page.get_by_role("button", name="Upload, check and add").click()


def test_a_bad_upload_then_a_good_one_in_the_browser(tmp_path):
    project = Project.create(tmp_path / "projects" / "p")
    mask = np.zeros((32, 32), np.uint16)
    mask[2:10, 2:10], mask[18:28, 18:28] = 1, 2
    files = tmp_path / "files"
    files.mkdir()
    tifffile.imwrite(files / "lonely.tif", (mask * 60).astype(np.uint8))  # no mask
    tifffile.imwrite(files / "A01.tif", (mask * 60).astype(np.uint8))
    tifffile.imwrite(files / "A01_mask.tif", mask)
    with app_server(tmp_path) as url, browser_page() as page:
        page.goto(f"{url}/?project=p")
        page.get_by_text("Images of p").wait_for()
        _upload(page, [files / "lonely.tif"])
        page.get_by_text("0 image(s) added").wait_for()
        page.get_by_text("Validation report of the last import").wait_for()
        assert project.images().empty
        assert not [p for p in (project.folder / "uploads").rglob("*") if p.is_file()]

        _upload(page, [files / "A01.tif", files / "A01_mask.tif"])
        page.get_by_text("1 image(s) added").wait_for()
        deadline = time.monotonic() + 10
        while project.images().empty and time.monotonic() < deadline:
            time.sleep(0.2)
        assert project.images()["name"].tolist() == ["A01.tif"]
