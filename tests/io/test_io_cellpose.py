"""svetlana_core.io.cellpose: .npy masks and Cellpose *_seg.npy, read without running a pickle."""

import os
import pickle

import numpy as np
import pytest

from svetlana_core.errors import InputError
from svetlana_core.io import read_mask
from svetlana_core.io.cellpose import same_as_seg
from tests.builders import disk_mask, named


def disks(shape=(40, 60), centres=((10, 10), (10, 45), (30, 30)), radius=5, labels=(3, 7, 42)):
    """A uint16 label mask of disks of a known radius with the given (gapped) labels."""
    return disk_mask(shape, centres, radius, labels)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.uint32, np.int32, np.int64])
def test_read_mask_npy_keeps_dtype(tmp_path, dtype):
    mask = disks().astype(dtype)
    np.save(tmp_path / "m.npy", mask)
    out = read_mask(tmp_path / "m.npy")
    assert out.dtype == dtype
    np.testing.assert_array_equal(out, mask)


def test_read_mask_cellpose_seg(tmp_path):
    mask = disks()
    seg = {"masks": mask, "outlines": np.zeros_like(mask), "filename": "img.png", "diameter": 30.0,
           "flows": [np.zeros((2, 40, 60), np.float32)], "est_diam": np.float64(29.5)}
    np.save(tmp_path / "img_seg.npy", seg, allow_pickle=True)
    np.testing.assert_array_equal(read_mask(tmp_path / "img_seg.npy"), mask)


def test_read_mask_cellpose_seg_written_by_numpy_1(tmp_path):
    boxed = np.empty((), dtype=object)
    boxed[()] = {"masks": disks(), "est_diam": np.float32(12.5)}
    # numpy 1.x pickles name numpy.core.multiarray where numpy 2 names numpy._core.multiarray;
    # protocol 2 writes those names as plain text, so they can be swapped in place
    data = pickle.dumps(boxed, protocol=2)
    assert b"numpy._core.multiarray" in data
    with open(tmp_path / "old_seg.npy", "wb") as handle:
        np.lib.format.write_array_header_1_0(
            handle, {"descr": "|O", "fortran_order": False, "shape": ()}
        )
        handle.write(data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray"))
    np.testing.assert_array_equal(read_mask(tmp_path / "old_seg.npy"), disks())


def test_read_mask_cellpose_seg_truncated(tmp_path):
    np.save(tmp_path / "cut_seg.npy", {"masks": disks()}, allow_pickle=True)
    data = (tmp_path / "cut_seg.npy").read_bytes()
    (tmp_path / "cut_seg.npy").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=f"could not read Cellpose file .*{named('cut_seg.npy')}"):
        read_mask(tmp_path / "cut_seg.npy")


def test_read_mask_plain_array_named_seg(tmp_path):
    np.save(tmp_path / "img_seg.npy", disks())
    np.testing.assert_array_equal(read_mask(tmp_path / "img_seg.npy"), disks())


class _Payload:
    """A pickle that runs code when loaded: here it would create a folder."""

    def __init__(self, target):
        self.target = str(target)

    def __reduce__(self):
        return os.mkdir, (self.target,)


def test_read_mask_cellpose_seg_does_not_run_pickled_code(tmp_path):
    target = tmp_path / "pwned"
    np.save(tmp_path / "evil_seg.npy", {"masks": disks(), "x": _Payload(target)}, allow_pickle=True)
    with pytest.raises(InputError, match=f"{named('evil_seg.npy')} refers to posix.mkdir"):
        read_mask(tmp_path / "evil_seg.npy")
    assert not target.exists()


@pytest.mark.parametrize(
    ("content", "found"),
    [({"outlines": np.zeros((4, 4))}, "dict"), ({"masks": [[1, 2]]}, "dict"), ([1, 2], "list")],
)
def test_read_mask_cellpose_seg_without_masks(tmp_path, content, found):
    boxed = np.empty((), dtype=object)
    boxed[()] = content
    np.save(tmp_path / "bad_seg.npy", boxed, allow_pickle=True)
    message = f"{named('bad_seg.npy')} does not hold a dict with a 'masks' array .found {found}"
    with pytest.raises(InputError, match=message):
        read_mask(tmp_path / "bad_seg.npy")


def test_read_mask_pickled_plain_npy_is_refused(tmp_path):
    np.save(tmp_path / "objects.npy", {"masks": disks()}, allow_pickle=True)
    with pytest.raises(InputError, match=f"{named('objects.npy')} holds Python objects"):
        read_mask(tmp_path / "objects.npy")


def test_read_mask_seg_npy_of_unknown_format_version(tmp_path):
    boxed = np.empty((), dtype=object)
    boxed[()] = {"masks": disks()}
    with open(tmp_path / "v3_seg.npy", "wb") as handle:
        np.lib.format.write_array(handle, boxed, version=(3, 0), allow_pickle=True)
    message = f"could not read Cellpose file .*{named('v3_seg.npy')}: unsupported"
    with pytest.raises(InputError, match=message):
        read_mask(tmp_path / "v3_seg.npy")


def test_read_mask_npz_named_npy(tmp_path):
    with open(tmp_path / "archive.npy", "wb") as handle:
        np.savez(handle, masks=disks())
    with pytest.raises(InputError, match=f"{named('archive.npy')} is not a single .npy array"):
        read_mask(tmp_path / "archive.npy")


def test_read_mask_bool_npy(tmp_path):
    np.save(tmp_path / "bool.npy", disks() > 0)
    with pytest.raises(InputError, match=f"{named('bool.npy')} looks binary"):
        read_mask(tmp_path / "bool.npy")
    assert read_mask(tmp_path / "bool.npy", relabel_binary=True).max() == 3


def test_read_mask_truncated_npy(tmp_path):
    np.save(tmp_path / "cut.npy", disks())
    data = (tmp_path / "cut.npy").read_bytes()
    (tmp_path / "cut.npy").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=f"could not read mask .*{named('cut.npy')}"):
        read_mask(tmp_path / "cut.npy")


def test_same_as_seg_compares_the_two_cellpose_masks(tmp_path):
    mask = disks()
    np.save(tmp_path / "a_seg.npy", {"masks": mask, "flows": [np.ones((2, 40, 60), np.float32)]},
            allow_pickle=True)
    png = tmp_path / "a_cp_masks.png"
    assert same_as_seg(mask, png, tmp_path / "a_seg.npy") is True
    assert same_as_seg(mask[None], png, tmp_path / "a_seg.npy") is True  # a plane of one
    assert same_as_seg(mask, png, tmp_path / "a_seg.npy", max_bytes=100) is False  # too big
    edited = mask.copy()
    edited[mask == 42] = 0  # one disk of radius 5 deleted in the GUI: 81 pixels
    with pytest.raises(InputError, match=r"Cellpose masks a_cp_masks.png and a_seg.npy differ "
                                         r"in 81 pixels \(edited after export\?\): keep the one"):
        same_as_seg(edited, png, tmp_path / "a_seg.npy")
    with pytest.raises(InputError, match=r"a_cp_masks.png \(40, 59\) and a_seg.npy \(40, 60\) "
                                         "differ in shape"):
        same_as_seg(mask[:, 1:], png, tmp_path / "a_seg.npy")
