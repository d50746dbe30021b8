"""The pipeline on a 2-worker Dask LocalCluster gives exactly the in-process results."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from risk_models import pipeline
from risk_models.dask_runner import build_static_dask, dask_client, nowcast_dask, parent_cells
from risk_models.errors import ModelInputError
from risk_models.rainsource import gauge_source
from tests.support.risk_synth import steep_sites, write_dem

SCENARIOS = Path(__file__).resolve().parents[2] / "data" / "scenarios"


@pytest.fixture(scope="module")
def dem(tmp_path_factory) -> Path:
    return write_dem(tmp_path_factory.mktemp("dask") / "dem.tif")


def test_parent_cells_match_h3() -> None:
    import h3

    cells = [h3.latlng_to_cell(22.5 + i * 0.01, 113.4, 9) for i in range(20)]
    ints = np.array([h3.str_to_int(c) for c in cells], dtype="int64")
    want = [h3.str_to_int(h3.cell_to_parent(c, 6)) for c in cells]
    assert parent_cells(ints, 6).tolist() == want


def test_two_worker_cluster_matches_in_process(dem: Path) -> None:
    sites = steep_sites(dem)
    params = pipeline.PipelineParams.from_dict({"window_rows": 32})
    local = pipeline.build_static(dem, res=10, params=params, sites_lonlat=sites)
    rng = np.random.default_rng(5)
    g_lon = local["lon"].sample(6, random_state=1).to_numpy() + 0.001
    g_lat = local["lat"].sample(6, random_state=1).to_numpy()
    gauges = gauge_source(g_lon, g_lat, rng.gamma(0.6, 12.0, size=(6, 24)))
    scenario = pipeline.scenario_source(SCENARIOS / "typhoon_300mm_24h.json", local)
    with dask_client("local", n_workers=2) as client:
        assert len(client.scheduler_info()["workers"]) == 2
        remote = build_static_dask(dem, res=10, params=params, sites_lonlat=sites, client=client)
        pd.testing.assert_frame_equal(remote, local, check_exact=True)
        for model, rain in (("landslide", scenario), ("flood", gauges), ("rainstorm", gauges)):
            rain = pipeline.rain_for(rain, local)
            want = pipeline.nowcast(local, rain, model, params)
            got = nowcast_dask(local, rain, model, params, client=client, parent_res=8)
            assert len(got) == len(want) > 100
            pd.testing.assert_frame_equal(got, want, check_exact=True)
            assert want["level"].nunique() > 1  # a real comparison, not all zeros


def test_unknown_scheduler_is_a_clear_error() -> None:
    with pytest.raises(ModelInputError, match="scheduler"), dask_client("udp://nowhere"):
        pass


def test_resident_chunks_give_the_same_rows(dem: Path) -> None:
    from risk_models.dask_runner import scatter_static

    local = pipeline.build_static(dem, res=9, sites_lonlat=steep_sites(dem))
    rain = pipeline.scenario_source(SCENARIOS / "cloudburst_100mm_3h.json", local)
    want = pipeline.nowcast(local, rain, "flood")
    with dask_client("local", n_workers=2) as client:
        resident = scatter_static(local, "flood", client=client, parent_res=7)
        for _ in range(2):  # a refresh loop reuses the chunks
            got = nowcast_dask(local, rain, "flood", client=client, resident=resident)
            pd.testing.assert_frame_equal(got, want, check_exact=True)


def test_a_killed_worker_holding_chunks_does_not_hang_the_refresh(dem: Path) -> None:
    """The worker holding scattered static chunks dies between refreshes: the next refresh
    notices the lost chunks, scatters them again and gives the same rows."""
    import os
    import signal

    from risk_models.dask_runner import scatter_static

    local = pipeline.build_static(dem, res=9, sites_lonlat=steep_sites(dem))
    rain = pipeline.scenario_source(SCENARIOS / "cloudburst_100mm_3h.json", local)
    want = pipeline.nowcast(local, rain, "flood")
    with dask_client("local", n_workers=2) as client:
        resident = scatter_static(local, "flood", client=client, parent_res=7)
        before = list(resident)
        holders = client.who_has(resident)
        victim = next(iter(holders[resident[0].key]))
        pids = client.run(os.getpid)
        os.kill(pids[victim], signal.SIGKILL)
        got = nowcast_dask(local, rain, "flood", client=client, resident=resident, timeout_s=120)
        pd.testing.assert_frame_equal(got, want, check_exact=True)
        assert [f.key for f in resident] != [f.key for f in before]  # healed in place
        again = nowcast_dask(local, rain, "flood", client=client, resident=resident)
        pd.testing.assert_frame_equal(again, want, check_exact=True)


def test_no_worker_is_a_loud_failure_not_a_hang(dem: Path) -> None:
    from distributed import Client, LocalCluster

    from risk_models.errors import DistributedRunFailed

    local = pipeline.build_static(dem, res=9, sites_lonlat=steep_sites(dem))
    rain = pipeline.scenario_source(SCENARIOS / "cloudburst_100mm_3h.json", local)
    with (
        LocalCluster(n_workers=0, dashboard_address=None, silence_logs=40) as cluster,
        Client(cluster) as client,
        pytest.raises(DistributedRunFailed, match="no Dask worker"),
    ):
        nowcast_dask(local, rain, "flood", client=client, timeout_s=3)


def _layers(folder: Path) -> dict[str, np.ndarray]:
    import rasterio

    out = {}
    for path in sorted(folder.glob("*.tif")):
        with rasterio.open(path) as ds:
            out[path.stem] = ds.read(1)
    return out


def test_windowed_terrain_on_workers_survives_a_killed_worker(tmp_path: Path) -> None:
    """The tile tasks run on two workers; one is killed while it runs flow directions. Its
    tasks are retried on the other and every layer equals the in-process run."""
    import os
    import signal
    import threading
    import time

    from risk_models.dask_runner import derive_terrain_dask
    from risk_models.terrain_tiles import derive_terrain_tiled

    dem = write_dem(tmp_path / "dem.tif", n=600, seed=3)
    kw = {"stream_area_km2": 0.05, "tile_px": 60, "halo_px": 4}
    derive_terrain_tiled(dem, tmp_path / "local", **kw)
    killed: list[str] = []
    with dask_client("local", n_workers=2) as client:
        pids = client.run(os.getpid)

        def kill_during_directions() -> None:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and not killed:
                for worker, keys in client.processing().items():
                    if any("_local_pass" in str(k) for k in keys):
                        os.kill(pids[worker], signal.SIGKILL)
                        killed.append(worker)
                        return
                time.sleep(0.005)

        watcher = threading.Thread(target=kill_during_directions, daemon=True)
        watcher.start()
        derive_terrain_dask(dem, tmp_path / "remote", client=client, **kw)
        watcher.join(timeout=1)
    assert killed, "no worker was running a flow-direction task to kill"
    local, remote = _layers(tmp_path / "local"), _layers(tmp_path / "remote")
    assert set(local) == set(remote) and len(local) == 15
    for name, want in local.items():
        assert np.array_equal(remote[name], want, equal_nan=True), name


def test_banded_static_table_on_workers_matches_in_process(dem: Path, tmp_path: Path) -> None:
    from risk_models.dask_runner import client_map
    from risk_models.static_tiles import build_static_tiled
    from risk_models.terrain_tiles import derive_terrain_tiled

    sites = steep_sites(dem)
    params = pipeline.PipelineParams.from_dict({"window_rows": 32})
    layers = derive_terrain_tiled(dem, tmp_path / "layers", tile_px=100)
    local = build_static_tiled(dem, layers, res=9, params=params, sites_lonlat=sites, band_rows=64)
    with dask_client("local", n_workers=2) as client:
        remote = build_static_tiled(
            dem, layers, res=9, params=params, sites_lonlat=sites, band_rows=64,
            map_windows=client_map(client),
        )  # fmt: skip
    pd.testing.assert_frame_equal(remote, local, check_exact=True)
    # and both equal the in-memory table
    whole = pipeline.build_static(dem, res=9, params=params, sites_lonlat=sites)
    pd.testing.assert_frame_equal(local, whole, check_exact=True)
