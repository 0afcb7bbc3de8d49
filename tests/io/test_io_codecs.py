"""svetlana_core.io.read beyond the plain formats (issue 10, items 6 and 7): every TIFF codec
tifffile writes, the declared-size cap checked before anything is decompressed, lossy masks
refused, and uncompressed TIFFs mapped from the file rather than copied."""

import numpy as np
import pytest
import tifffile

from svetlana_core.errors import InputError
from svetlana_core.io import read_image, read_mask

#: Every TIFF compression tifffile writes with the imagecodecs installed here; JPEG and WebP
#: take 8-bit data.
CODECS = ["lzw", "zlib", "deflate", "zstd", "lzma", "packbits", "png", "jpeg", "jpeg2000",
          "jpegxl", "jpegxr", "lerc", "webp"]


def _labels() -> np.ndarray:
    mask = np.zeros((64, 64), np.uint8)
    mask[5:20, 5:20], mask[30:50, 25:45] = 3, 200
    return mask


@pytest.mark.parametrize("codec", CODECS)
def test_compressed_tiffs_are_read(tmp_path, codec):
    grey = np.tile(np.arange(64, dtype=np.uint8) * 4, (64, 1))
    data = np.stack([grey] * 3, axis=-1) if codec == "webp" else grey
    path = tmp_path / f"{codec}.tif"
    try:
        tifffile.imwrite(path, data, compression=codec, photometric="rgb" if data.ndim == 3
                         else "minisblack")
    except Exception as error:  # a codec this build of imagecodecs lacks
        pytest.skip(f"tifffile cannot write {codec} here: {error}")
    image = read_image(path)
    assert image.shape == ((3, 64, 64) if data.ndim == 3 else (1, 64, 64))
    if codec not in ("jpeg", "webp", "jpegxr", "jpeg2000", "jpegxl", "lerc"):  # lossless
        np.testing.assert_array_equal(image[0], grey)
    mask_path = tmp_path / f"{codec}_mask.tif"
    if codec == "webp":
        return
    tifffile.imwrite(mask_path, _labels(), compression=codec)
    if codec == "jpeg":
        with pytest.raises(InputError, match=r"is JPEG-compressed TIFF: lossy compression "
                                             r"changes label values"):
            read_mask(mask_path)
    elif codec in ("lzw", "zlib", "deflate", "zstd", "lzma", "packbits", "png"):
        np.testing.assert_array_equal(read_mask(mask_path), _labels())


def test_a_small_tiff_declaring_a_huge_image_is_refused_before_decompressing(tmp_path):
    """3.4 MB of zlib tiles declaring 40,960² uint16 pixels (3.4 GB once decompressed)."""
    tile = np.zeros((1024, 1024), np.uint16)
    path = tmp_path / "bomb.tif"
    tifffile.imwrite(path, (tile for _ in range(40 * 40)), shape=(40960, 40960),
                     dtype=np.uint16, tile=(1024, 1024), compression="zlib")
    assert path.stat().st_size < 5_000_000
    for reader, what in ((read_mask, "mask"), (read_image, "image")):
        with pytest.raises(InputError, match=rf"could not read {what} \S+bomb\.tif: it declares "
                                             r"\(40960, 40960\) uint16 values \(3\.36 GB\), more "
                                             r"than the 1,000,000,000 this server reads \(set "
                                             r"SVETLANA_MAX_PIXELS to raise the limit\)"):
            reader(path)


def test_the_size_cap_is_settable_and_covers_png(tmp_path, monkeypatch):
    from PIL import Image

    path = tmp_path / "big.png"
    Image.new("L", (400, 300)).save(path)
    tifffile.imwrite(tmp_path / "big.tif", np.zeros((300, 400), np.uint8))
    monkeypatch.setenv("SVETLANA_MAX_PIXELS", "100_000")
    for name in ("big.png", "big.tif"):
        with pytest.raises(InputError, match=r"declares \(300, 400.*more than the 100,000"):
            read_image(tmp_path / name)
    monkeypatch.setenv("SVETLANA_MAX_PIXELS", "not a number")  # ignored: the default
    assert read_image(path).shape == (1, 300, 400)


def test_uncompressed_tiffs_are_mapped_read_only_and_replacing_the_file_keeps_them(tmp_path):
    path = tmp_path / "mask.tif"
    tifffile.imwrite(path, _labels().astype(np.uint32))
    mask = read_mask(path)
    assert not mask.flags.writeable  # mapped from the file: no copy
    tifffile.imwrite(tmp_path / "other.tif", np.zeros((64, 64), np.uint32) + 9)
    (tmp_path / "other.tif").replace(path)  # what every writer here does: a rename
    np.testing.assert_array_equal(mask, _labels())
    big_endian = tmp_path / "be.tif"
    tifffile.imwrite(big_endian, _labels().astype(np.uint16), byteorder=">")
    np.testing.assert_array_equal(read_mask(big_endian), _labels())  # copied, byte-swapped
