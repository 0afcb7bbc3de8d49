"""ui.loaders: cached reads that follow the files (no server; Streamlit's caches run bare)."""

import os

import numpy as np

from tests.builders import disk_mask, write_pair
from ui import loaders


def test_a_replaced_file_is_read_again(tmp_path):
    image = np.full((32, 32), 100, np.uint16)
    image_path, mask_path = write_pair(tmp_path, "a", image, disk_mask((32, 32), [(8, 8)], 3, [4]))
    row = {"path": str(image_path), "mask_path": str(mask_path), "axes": None}
    _, mask = loaders.load_pair(row)
    assert loaders.object_table(row, mask)["label"].tolist() == [4]
    key = loaders.file_key(row)

    write_pair(tmp_path, "a", image, disk_mask((32, 32), [(20, 20)], 3, [9]))
    stat = os.stat(mask_path)
    os.utime(mask_path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # a later time
    _, mask = loaders.load_pair(row)
    assert set(np.unique(mask)) == {0, 9}
    assert loaders.object_table(row, mask)["label"].tolist() == [9]
    assert loaders.file_key(row) != key  # so cached previews of the old file are not shown
