"""Labels out of one project and into another through the browser, as QuPath GeoJSON (issue 14):
the download built on click, the upload checked and stored. Skipped where Chromium is missing."""

import io as bytes_io
import json
import time
import zipfile

import pytest

from svetlana_core.demo import create_demo
from svetlana_core.store import Project
from tests.browser_server import app_server, browser_page, chromium_missing
from tests.builders import current_labels

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(chromium_missing() is not None,
                                 reason=chromium_missing() or "")]


def test_labels_go_out_as_geojson_and_into_a_new_project(tmp_path):
    demo = create_demo(tmp_path / "projects" / "demo")
    copy = Project.create(tmp_path / "projects" / "copy")
    for row in demo.images().itertuples():
        copy.add_image(row.path, row.mask_path)
    with app_server(tmp_path) as url, browser_page() as page:
        page.goto(f"{url}/?project=demo")
        button = page.get_by_role("button", name="Download labels (QuPath GeoJSON, zip)")
        with page.expect_download() as download:
            button.click()
        archive = zipfile.ZipFile(bytes_io.BytesIO(download.value.path().read_bytes()))
        files = {name: archive.read(name) for name in archive.namelist()}
        assert sorted(files) == sorted(f"{name[:-4]}.geojson" for name in
                                       demo.labels()["image"].unique())
        first = json.loads(next(iter(files.values())))
        assert {f["properties"]["classification"]["name"] for f in first["features"]} <= \
            set(demo.classes()["name"])

        for name, data in files.items():
            (tmp_path / name).write_bytes(data)
        page.goto(f"{url}/?project=copy")
        uploader = page.locator("[data-testid='stFileUploader']").filter(
            has_text="QuPath GeoJSON files named after their images")
        uploader.locator("input[type='file']").set_input_files(
            [str(tmp_path / name) for name in files])
        store = page.get_by_role("button", name=f"Store {len(demo.labels())} label(s)")
        store.click()
        page.get_by_text(f"{len(demo.labels())} label(s) stored from GeoJSON file(s)").wait_for()
        deadline = time.monotonic() + 10
        while current_labels(copy) != current_labels(demo) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert current_labels(copy) == current_labels(demo)
