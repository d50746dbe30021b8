"""``onemap tiles export``: a PMTiles pyramid that reads back, and safe failures."""

from __future__ import annotations

import gzip
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import mapbox_vector_tile
import pytest
from pmtiles.reader import MmapSource, Reader, all_tiles
from pmtiles.tile import Compression, TileType

from tests.support.pg import BIN, demo_database
from tiles.errors import ExportFailed
from tiles.pmtiles_export import export_pmtiles
from tiles.tms import tiles_in_bbox

DB_NAME = "tiles_export_module"
BBOX = (113.35, 22.45, 113.45, 22.55)


@pytest.fixture(scope="module")
def export_url(pg_admin_url: str, template_db: str, tmp_path_factory) -> Iterator[str]:
    data_dir = tmp_path_factory.mktemp("export-data")
    with demo_database(pg_admin_url, template_db, DB_NAME, data_dir, 0.2, 11) as url:
        yield url


def _cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "onemap"), "tiles", "export", *args],
        env={**os.environ, "ONEMAP_DATABASE_URL": url, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_export_reads_back(export_url: str, tmp_path: Path) -> None:
    out = tmp_path / "city.pmtiles"
    bbox = ",".join(str(v) for v in BBOX)
    r = _cli(
        export_url,
        "--layers",
        "roads,buildings,grids",
        "--minzoom",
        "10",
        "--maxzoom",
        "14",
        "--bbox",
        bbox,
        "--workers",
        "3",
        str(out),
    )
    assert r.returncode == 0, r.stderr
    assert "wrote" in r.stderr
    with open(out, "rb") as f:
        get = MmapSource(f)
        reader = Reader(get)
        header = reader.header()
        assert header["tile_type"] == TileType.MVT
        assert header["tile_compression"] == Compression.GZIP
        assert (header["min_zoom"], header["max_zoom"]) == (10, 14)
        meta = reader.metadata()
        assert {v["id"] for v in meta["vector_layers"]} == {"roads", "buildings", "grids"}
        tiles = list(all_tiles(get))
        addressed = {(z, x, y) for z, x, y in tiles_in_bbox(BBOX, 10, 14)}
        assert {zxy for zxy, _ in tiles} <= addressed
        assert header["addressed_tiles_count"] == len(tiles)
        # Every tile with data was written: grids and roads cover the whole bbox.
        assert {zxy for zxy, _ in tiles if zxy[0] == 14} == {a for a in addressed if a[0] == 14}
        with_buildings = 0
        for (z, _x, _y), data in tiles:
            layers = mapbox_vector_tile.decode(gzip.decompress(data))
            assert layers
            if "buildings" in layers:
                assert z >= 14  # the catalog's min_zoom
                with_buildings += 1
            for f in layers.get("grids", {}).get("features", []):
                assert "worker_phone" not in f["properties"]
        assert with_buildings > 0
    assert oct(out.stat().st_mode & 0o777) == "0o644"
    assert [p.name for p in tmp_path.iterdir()] == ["city.pmtiles"]


def test_library_export_counts(export_url: str, tmp_path: Path) -> None:
    seen: list[tuple[int, int]] = []
    result = export_pmtiles(
        export_url,
        "admin_areas,rivers",
        tmp_path / "a.pmtiles",
        minzoom=0,
        maxzoom=9,
        workers=2,
        progress=lambda done, total: seen.append((done, total)),
    )
    assert result.tiles_examined >= 10 and result.tiles_written == result.tiles_examined
    assert seen and seen[-1][0] == seen[-1][1] == result.tiles_examined
    with open(result.path, "rb") as f:
        assert len(list(all_tiles(MmapSource(f)))) == result.tiles_written


def test_metadata_zooms_and_counts_match_the_archive(export_url: str, tmp_path: Path) -> None:
    """Buildings start at zoom 14: an export of 12–15 holds 14–15, and says so everywhere."""
    result = export_pmtiles(
        export_url, "buildings", tmp_path / "b.pmtiles", minzoom=12, maxzoom=15, bbox=BBOX
    )
    with open(result.path, "rb") as f:
        reader = Reader(MmapSource(f))
        header, metadata = reader.header(), reader.metadata()
        zooms = {zxy[0] for zxy, _ in all_tiles(MmapSource(f))}
    assert zooms == {14, 15}
    assert (header["min_zoom"], header["max_zoom"]) == (14, 15)
    assert (metadata["minzoom"], metadata["maxzoom"]) == (14, 15)
    assert (result.minzoom, result.maxzoom) == (14, 15)
    assert header["addressed_tiles_count"] == result.tiles_written
    assert result.tiles_examined == len(list(tiles_in_bbox(BBOX, 12, 15))) > result.tiles_written
    assert 14 <= header["center_zoom"] <= 15


@pytest.mark.parametrize("target", ["/nonexistent-dir/out.pmtiles", "/proc/out.pmtiles"])
def test_unwritable_output_is_a_clear_error(export_url: str, target: str) -> None:
    r = _cli(export_url, "--layers", "roads", "--maxzoom", "8", target)
    assert r.returncode == 1
    assert "cannot write" in r.stderr and "Traceback" not in r.stderr
    assert not Path(target).exists()


def test_failure_midway_leaves_no_file(export_url: str, tmp_path: Path) -> None:
    def boom(done: int, total: int) -> None:
        raise RuntimeError("interrupted")

    out = tmp_path / "partial.pmtiles"
    with pytest.raises(RuntimeError):
        export_pmtiles(export_url, "roads", out, minzoom=8, maxzoom=12, bbox=BBOX, progress=boom)
    assert list(tmp_path.iterdir()) == []


def test_bad_arguments(export_url: str, tmp_path: Path) -> None:
    r = _cli(export_url, "--layers", "nope", str(tmp_path / "x.pmtiles"))
    assert r.returncode == 1 and "unknown layer" in r.stderr
    r = _cli(export_url, "--layers", "roads", "--bbox", "1,2,3", str(tmp_path / "x.pmtiles"))
    assert r.returncode == 2 and "--bbox" in r.stderr
    with pytest.raises(ExportFailed, match="no tile"):
        export_pmtiles(
            export_url,
            "roads",
            tmp_path / "y.pmtiles",
            minzoom=3,
            maxzoom=4,
            bbox=(-10.0, -10.0, -9.0, -9.0),
        )
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 256 KiB tmpfs: a real disk that fills up (``make test`` runs as root)."""
    assert os.geteuid() == 0, "this test mounts a tmpfs; run the suite as root (make test)"
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_disk_full_is_a_clear_error_and_keeps_the_old_archive(
    export_url: str, tiny_disk: Path
) -> None:
    out = tiny_disk / "city.pmtiles"
    old = b"an older archive that must survive"
    out.write_bytes(old)
    r = _cli(
        export_url,
        "--layers",
        "buildings,addresses",
        "--minzoom",
        "14",
        "--maxzoom",
        "16",
        str(out),
    )
    assert r.returncode == 1, r.stderr
    assert "cannot write" in r.stderr and "No space left" in r.stderr
    assert "Traceback" not in r.stderr
    assert out.read_bytes() == old  # nothing lost
    assert [p.name for p in tiny_disk.iterdir()] == [out.name]  # no temp file left behind
