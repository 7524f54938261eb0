"""XMP sidecars: names, merging, safe writes, and a photo that is never touched."""
from __future__ import annotations

import shutil
from pathlib import Path

import pyexiv2
import pytest

from starsort.library import xmp as module

from ..helpers import DATA, FOREIGN_SIDECAR, read_xmp, sha256


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    """A real JPEG in a folder of its own, named like a camera file."""
    p = tmp_path / "DSC0001.JPG"
    shutil.copyfile(DATA / "ivan.jpg", p)
    return p


def test_sidecar_paths_gives_stem_xmp_for_adobe_naming():
    assert module.sidecar_paths(Path("/p/DSC0001.ARW"), "adobe") == [Path("/p/DSC0001.xmp")]


def test_sidecar_paths_gives_name_xmp_for_darktable_naming():
    assert module.sidecar_paths(Path("/p/DSC0001.ARW"), "darktable") == [Path("/p/DSC0001.ARW.xmp")]


def test_sidecar_paths_gives_both_names_for_both_naming():
    assert module.sidecar_paths(Path("/p/DSC0001.ARW"), "both") == [
        Path("/p/DSC0001.xmp"), Path("/p/DSC0001.ARW.xmp")]


def test_sidecar_paths_shares_the_adobe_sidecar_between_a_raw_and_its_jpeg():
    raw = module.sidecar_paths(Path("/p/DSC0001.ARW"), "adobe")
    jpg = module.sidecar_paths(Path("/p/DSC0001.JPG"), "adobe")
    assert raw == jpg


def test_sidecar_paths_raises_for_an_unknown_naming():
    with pytest.raises(ValueError, match="naming"):
        module.sidecar_paths(Path("/p/DSC0001.ARW"), "capture-one")


def test_write_rating_creates_an_adobe_sidecar_whose_rating_pyexiv2_reads(photo: Path):
    written = module.write_rating(photo, 4, "adobe")

    sidecar = photo.with_name("DSC0001.xmp")
    assert written == [sidecar]
    assert read_xmp(sidecar)["Xmp.xmp.Rating"] == "4"
    assert module.read_rating(sidecar) == 4


def test_write_rating_puts_xmp_rating_in_the_text_lightroom_and_darktable_parse(photo: Path):
    (sidecar,) = module.write_rating(photo, 3, "adobe")

    text = sidecar.read_text(encoding="utf-8")
    assert 'xmlns:xmp="http://ns.adobe.com/xap/1.0/"' in text
    assert 'xmp:Rating="3"' in text or "<xmp:Rating>3</xmp:Rating>" in text


def test_write_rating_with_darktable_naming_writes_name_dot_xmp(tmp_path: Path):
    raw = tmp_path / "DSC0001.ARW"
    raw.write_bytes(b"not really a raw")

    written = module.write_rating(raw, 5, "darktable")

    assert written == [tmp_path / "DSC0001.ARW.xmp"]
    assert module.read_rating(tmp_path / "DSC0001.ARW.xmp") == 5
    assert not (tmp_path / "DSC0001.xmp").exists()


def test_write_rating_with_both_naming_writes_two_sidecars(photo: Path):
    written = module.write_rating(photo, 2, "both")

    assert sorted(p.name for p in written) == ["DSC0001.JPG.xmp", "DSC0001.xmp"]
    assert all(module.read_rating(p) == 2 for p in written)


def test_write_rating_sets_the_label_when_given(photo: Path):
    (sidecar,) = module.write_rating(photo, 5, "adobe", label="Green")

    assert read_xmp(sidecar)["Xmp.xmp.Label"] == "Green"


def test_write_rating_records_provenance_in_the_starsort_namespace(photo: Path):
    (sidecar,) = module.write_rating(photo, 4, "adobe")

    assert read_xmp(sidecar)["Xmp.starsort.Stars"] == "4"
    assert module.STARSORT_NS in sidecar.read_text(encoding="utf-8")


def test_write_rating_keeps_every_key_another_tool_wrote(photo: Path):
    sidecar = photo.with_name("DSC0001.xmp")
    sidecar.write_text(FOREIGN_SIDECAR, encoding="utf-8")
    before = read_xmp(sidecar)

    module.write_rating(photo, 4, "adobe", label="Green")

    after = read_xmp(sidecar)
    assert after["Xmp.xmp.Rating"] == "4"
    assert after["Xmp.crs.Exposure2012"] == "+0.50"
    assert after["Xmp.dc.subject"] == ["holiday", "Ærø"]
    assert after["Xmp.darktable.colorlabels"] == ["3"]
    assert after["Xmp.darktable.history[1]/darktable:operation"] == "exposure"
    assert {k: v for k, v in after.items() if k != "Xmp.xmp.Rating"}.items() >= {
        k: v for k, v in before.items() if k != "Xmp.xmp.Rating"}.items()


def test_write_rating_again_changes_the_rating(photo: Path):
    module.write_rating(photo, 2, "adobe")
    (sidecar,) = module.write_rating(photo, 5, "adobe")

    assert module.read_rating(sidecar) == 5
    assert 'xmp:Rating="5"' in sidecar.read_text(encoding="utf-8")


def test_write_rating_leaves_the_photo_bytes_untouched(photo: Path):
    before = sha256(photo)
    mtime = photo.stat().st_mtime_ns

    module.write_rating(photo, 3, "both", label="Red")

    assert sha256(photo) == before
    assert photo.stat().st_mtime_ns == mtime


def test_write_rating_leaves_no_temp_files_behind(photo: Path):
    module.write_rating(photo, 3, "both")
    module.write_rating(photo, 4, "both")

    assert sorted(p.name for p in photo.parent.iterdir()) == [
        "DSC0001.JPG", "DSC0001.JPG.xmp", "DSC0001.xmp"]


def test_write_rating_works_for_a_non_ascii_file_name(tmp_path: Path):
    folder = tmp_path / "Ærø 2024 – 写真"
    folder.mkdir()
    photo = folder / "Ångström_é.JPG"
    shutil.copyfile(DATA / "ivan.jpg", photo)

    written = module.write_rating(photo, 4, "both")

    assert [p.name for p in written] == ["Ångström_é.xmp", "Ångström_é.JPG.xmp"]
    assert all(module.read_rating(p) == 4 for p in written)


def test_write_rating_raises_xmp_error_and_keeps_a_sidecar_it_cannot_parse(photo: Path):
    sidecar = photo.with_name("DSC0001.xmp")
    broken = FOREIGN_SIDECAR.replace("</dc:subject>", "").encode("utf-8")
    sidecar.write_bytes(broken)

    with pytest.raises(module.XmpError) as err:
        module.write_rating(photo, 4, "adobe")

    assert err.value.path == sidecar
    assert sidecar.read_bytes() == broken
    assert sorted(p.name for p in photo.parent.iterdir()) == ["DSC0001.JPG", "DSC0001.xmp"]


def test_write_rating_refuses_a_sidecar_name_that_holds_an_image(photo: Path):
    sidecar = photo.with_name("DSC0001.xmp")
    shutil.copyfile(photo, sidecar)

    with pytest.raises(module.XmpError, match="image/jpeg"):
        module.write_rating(photo, 4, "adobe")

    assert sha256(sidecar) == sha256(photo)


def test_write_rating_writes_the_other_sidecar_when_one_fails(photo: Path):
    photo.with_name("DSC0001.xmp").write_bytes(b"garbage, not xmp")

    with pytest.raises(module.XmpError) as err:
        module.write_rating(photo, 4, "both")

    assert err.value.written == [photo.with_name("DSC0001.JPG.xmp")]
    assert module.read_rating(photo.with_name("DSC0001.JPG.xmp")) == 4


def test_write_rating_does_not_follow_a_symlinked_sidecar(photo: Path, tmp_path: Path):
    target = tmp_path / "elsewhere.xmp"
    target.write_text(FOREIGN_SIDECAR, encoding="utf-8")
    photo.with_name("DSC0001.xmp").symlink_to(target)

    with pytest.raises(module.XmpError, match="symlink"):
        module.write_rating(photo, 4, "adobe")

    assert target.read_text(encoding="utf-8") == FOREIGN_SIDECAR


@pytest.mark.parametrize("stars", [0, 6, -2, True, 3.0])
def test_write_rating_raises_value_error_for_stars_outside_1_to_5_and_minus_1(photo: Path, stars):
    with pytest.raises(ValueError, match="stars"):
        module.write_rating(photo, stars, "adobe")


def test_read_rating_returns_none_for_a_missing_sidecar(tmp_path: Path):
    assert module.read_rating(tmp_path / "nothing.xmp") is None


def test_read_rating_returns_none_for_a_sidecar_without_a_rating(tmp_path: Path):
    sidecar = tmp_path / "DSC0001.xmp"
    sidecar.write_text(FOREIGN_SIDECAR.replace('   xmp:Rating="1"\n', ""), encoding="utf-8")

    assert module.read_rating(sidecar) is None


def test_write_rating_merges_again_when_another_program_rewrites_the_sidecar_meanwhile(
        photo: Path, monkeypatch):
    sidecar = photo.with_name("DSC0001.xmp")
    sidecar.write_text(FOREIGN_SIDECAR, encoding="utf-8")
    real_merge = module._merged_bytes
    calls = []

    def darktable_writes_during_the_first_merge(path, data, values):
        out = real_merge(path, data, values)
        if not calls:
            # darktable saves a new keyword between our read and our rename.
            sidecar.write_text(FOREIGN_SIDECAR.replace("<rdf:li>holiday</rdf:li>",
                                                       "<rdf:li>holiday</rdf:li><rdf:li>beach</rdf:li>"),
                               encoding="utf-8")
        calls.append(path)
        return out

    monkeypatch.setattr(module, "_merged_bytes", darktable_writes_during_the_first_merge)

    module.write_rating(photo, 5, "adobe")

    assert len(calls) == 2
    after = read_xmp(sidecar)
    assert after["Xmp.dc.subject"] == ["holiday", "beach", "Ærø"]
    assert after["Xmp.xmp.Rating"] == "5"


def test_write_rating_leaves_a_read_only_sidecar_alone(photo: Path):
    sidecar = photo.with_name("DSC0001.xmp")
    sidecar.write_text(FOREIGN_SIDECAR, encoding="utf-8")
    sidecar.chmod(0o444)

    with pytest.raises(module.XmpError, match="read-only"):
        module.write_rating(photo, 5, "adobe")

    assert module.read_rating(sidecar) == 1


# ---- naming by the config's names, rejects, the pick label, XMP inside JPEGs ----------

def test_sidecar_paths_gives_name_xmp_for_ext_naming_and_keeps_the_old_darktable_name():
    assert module.sidecar_paths(Path("/p/DSC0001.ARW"), "ext") == [Path("/p/DSC0001.ARW.xmp")]
    assert module.sidecar_paths(Path("/p/DSC0001.ARW"), "darktable") == [Path("/p/DSC0001.ARW.xmp")]


def test_write_rating_writes_minus_1_for_a_reject_that_read_rating_returns(photo: Path):
    (sidecar,) = module.write_rating(photo, module.REJECTED, "adobe")

    assert read_xmp(sidecar)["Xmp.xmp.Rating"] == "-1"
    assert module.read_rating(sidecar) == -1


def test_write_rating_also_rates_an_existing_sidecar_of_the_other_naming(tmp_path: Path):
    raw = copy_raw(tmp_path)
    darktable = tmp_path / "DSC0001.ARW.xmp"
    darktable.write_text(FOREIGN_SIDECAR, encoding="utf-8")

    written = module.write_rating(raw, 4, "adobe")

    assert written == [tmp_path / "DSC0001.xmp", darktable]
    assert module.read_rating(darktable) == 4
    assert read_xmp(darktable)["Xmp.dc.subject"] == ["holiday", "Ærø"]


def test_unlabel_removes_the_label_starsort_wrote(photo: Path):
    module.write_rating(photo, 5, "adobe", label="Green")

    (sidecar,) = module.write_rating(photo, None, "adobe", unlabel="Green")

    keys = read_xmp(sidecar)
    assert "Xmp.xmp.Label" not in keys
    assert keys["Xmp.xmp.Rating"] == "5"


def test_unlabel_keeps_a_label_the_photographer_changed_since(photo: Path):
    module.write_rating(photo, 5, "adobe", label="Green")
    (sidecar,) = module.write_rating(photo, None, "adobe", label="Red")   # as Lightroom would

    module.write_rating(photo, None, "adobe", unlabel="Green")

    assert module.read_label(sidecar) == "Red"


def test_a_label_only_update_leaves_a_rating_the_photographer_changed(photo: Path):
    sidecar = photo.with_name("DSC0001.xmp")
    sidecar.write_text(FOREIGN_SIDECAR, encoding="utf-8")           # xmp:Rating="1" from darktable

    module.write_rating(photo, None, "adobe", label="Green")

    assert module.read_rating(sidecar) == 1 and module.read_label(sidecar) == "Green"


def _scan_data(jpeg: bytes) -> bytes:
    """Everything from the main image's start-of-scan marker: the compressed image itself.

    The segments are walked by their lengths, because the EXIF thumbnail
    inside APP1 has a start-of-scan marker of its own.
    """
    pos = 2
    while jpeg[pos + 1] != 0xDA:
        pos += 2 + int.from_bytes(jpeg[pos + 2:pos + 4], "big")
    return jpeg[pos:]


def test_write_rating_in_jpeg_puts_the_rating_inside_and_keeps_the_image_data(tmp_path: Path):
    photo = tmp_path / "DSC00001.JPG"
    shutil.copyfile(DATA / "SonySLT-A55__DSC3755.JPG", photo)
    before = photo.read_bytes()
    with pyexiv2.Image(str(photo)) as img:
        exif_before = img.read_exif()

    module.write_rating_in_jpeg(photo, 4, label="Green")

    after = photo.read_bytes()
    assert _scan_data(after) == _scan_data(before)
    with pyexiv2.Image(str(photo)) as img:
        assert img.read_xmp()["Xmp.xmp.Rating"] == "4"
        assert img.read_xmp()["Xmp.xmp.Label"] == "Green"
        assert img.read_exif() == exif_before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["DSC00001.JPG"]   # no temp file left


def test_write_rating_in_jpeg_refuses_a_file_that_is_not_a_jpeg(tmp_path: Path):
    raw = copy_raw(tmp_path)
    before = sha256(raw)

    with pytest.raises(module.XmpError, match="not a JPEG"):
        module.write_rating_in_jpeg(raw, 4)

    assert sha256(raw) == before


def copy_raw(folder: Path) -> Path:
    raw = folder / "DSC0001.ARW"
    shutil.copyfile(DATA / "two_people.ARW", raw)
    return raw


def test_write_rating_in_jpeg_twice_keeps_one_xmp_segment_with_the_latest_rating(photo: Path):
    before = photo.read_bytes()

    module.write_rating_in_jpeg(photo, 2)
    module.write_rating_in_jpeg(photo, 5)

    after = photo.read_bytes()
    assert after.count(b"http://ns.adobe.com/xap/1.0/\x00") == 1
    assert _scan_data(after) == _scan_data(before)
    with pyexiv2.Image(str(photo)) as img:
        assert img.read_xmp()["Xmp.xmp.Rating"] == "5"
