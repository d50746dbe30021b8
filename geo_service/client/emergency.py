"""Risk runs, their H3 cells, exposure, camera coverage and warnings (the emergency API)."""

from __future__ import annotations

import io
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd

from geo_service.client.base import ClientBase, _level_name, _level_number, _run_id
from geo_service.client.errors import RunFailedError
from geo_service.client.frames import CRS, DATETIME, features_to_gdf, parse_csv_page


class EmergencyMixin(ClientBase):
    """Model runs (operator key to start one), cells, explanations, exposure and warnings."""

    # ------------------------------------------------------------------ risk runs
    def risk_run(
        self,
        model: str = "landslide",
        rain: Mapping[str, Any] | None = None,
        *,
        scenario: str | None = None,
        res: int = 9,
        params: Mapping[str, Any] | None = None,
        wait: bool = True,
        timeout_s: float = 600.0,
        poll_s: float = 0.5,
    ) -> dict[str, Any]:
        """Start a ``model`` (``landslide`` | ``flood``) run at H3 resolution ``res``.

        ``rain`` is ``{"scenario": name}``, ``{"gauges": True, "hours": 24}`` or
        ``{"raster": name}``; ``scenario="typhoon_300mm_24h"`` is short for the first.
        Needs an operator key.  With ``wait`` (default) polls until the run is done and returns
        it; a failed run (or one not done within ``timeout_s`` seconds) raises
        :class:`RunFailedError`.
        """
        if rain is None:
            if scenario is None:
                raise ValueError("give rain= or scenario=")
            rain = {"scenario": scenario}
        body: dict[str, Any] = {"model": model, "rain": dict(rain), "res": res}
        if params:
            body["params"] = dict(params)
        run: dict[str, Any] = self.post_json("/risk/runs", body)
        return self.wait_run(run, timeout_s, poll_s) if wait else run

    def wait_run(
        self, run: int | Mapping[str, Any], timeout_s: float = 600.0, poll_s: float = 0.5
    ) -> dict[str, Any]:
        """Poll ``GET /risk/runs/{id}`` until the run is done; raise if it failed."""
        run_id = _run_id(run)
        deadline = time.monotonic() + timeout_s
        while True:
            doc = self.run(run_id)
            status = doc.get("status")
            if status == "done":
                return doc
            if status == "failed":
                raise RunFailedError(
                    0, "run_failed", str(doc.get("error") or f"run {run_id} failed"), doc
                )
            if time.monotonic() > deadline:
                raise RunFailedError(
                    0, "run_timeout", f"run {run_id} still {status!r} after {timeout_s:g} s", doc
                )
            time.sleep(poll_s)

    def run(self, run: int | Mapping[str, Any]) -> dict[str, Any]:
        """One run: status, timings, params, inputs, summary (cells per level)."""
        return self.get_json(f"/risk/runs/{_run_id(run)}")  # type: ignore[no-any-return]

    def runs(self) -> pd.DataFrame:
        """Risk runs, newest first."""
        doc = self.get_json("/risk/runs")
        items = doc if isinstance(doc, list) else doc.get("runs") or doc.get("items") or []
        return pd.DataFrame(items)

    def cells(
        self, run: int | Mapping[str, Any], level_min: int | str | None = None
    ) -> gpd.GeoDataFrame:
        """H3 hexagons of a run (polygons, degrees): ``h3`` (hex string), ``level`` 0–4,
        ``score``; only those at or above ``level_min`` (0–4 or blue/yellow/orange/red)."""
        doc = self.get_json(f"/risk/runs/{_run_id(run)}/cells", level_min=_level_number(level_min))
        gdf = features_to_gdf(doc.get("features") or [], {"level": "Int64"}, id_column="h3")
        gdf.attrs["run_id"] = _run_id(run)
        return gdf

    def explain(self, h3: str | int, run: int | Mapping[str, Any]) -> dict[str, Any]:
        """Why a cell got its level: factors, rain, thresholds (``GET /risk/cells/{h3}``)."""
        cell = format(h3, "x") if isinstance(h3, int) else h3
        return self.get_json(f"/risk/cells/{cell}", run=_run_id(run))  # type: ignore[no-any-return]

    # ------------------------------------------------------------------ analysis, warnings
    def exposure(
        self,
        run: int | Mapping[str, Any],
        level_min: int | str = "blue",
        *,
        limit: int | None = None,
    ) -> dict[str, Any]:
        """Who and what lies in a run's cells at or above ``level_min`` (blue/yellow/orange/red
        or 1–4): ``summary`` (addresses, venues, key_sites, population, grids, cameras_online,
        shelters), ``grids`` (per grid, with exposed population for operators), ``venues``,
        ``cameras``, ``shelters`` (nearest) and ``area`` (cells, km² per level).  Lists hold
        at most ``limit`` addresses/venues (server default 1,000)."""
        return self.get_json(  # type: ignore[no-any-return]
            "/analysis/exposure", run=_run_id(run), level_min=_level_name(level_min), limit=limit
        )

    def exposed_addresses(
        self, run: int | Mapping[str, Any], level_min: int | str = "blue"
    ) -> gpd.GeoDataFrame:
        """Every standard address in a run's cells at or above ``level_min`` (points, degrees):
        code, full_address, community, grid_code — e.g. for SMS lists."""
        resp = self.request(
            "GET",
            "/analysis/exposure/addresses.csv",
            params={"run": _run_id(run), "level_min": _level_name(level_min)},
        )
        body = resp.content.removeprefix(b"\xef\xbb\xbf")  # UTF-8 BOM for spreadsheets
        frame, geoms = parse_csv_page(body, self.dtypes("addresses"))
        return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geoms, crs=CRS), crs=CRS)

    def camera_coverage(
        self, community: str | None = None, target: float | None = None
    ) -> dict[str, Any]:
        """Share of key sites seen by at least one online camera — overall, per community and
        per grid — and the key sites none sees (``GET /analysis/camera-coverage``)."""
        return self.get_json(  # type: ignore[no-any-return]
            "/analysis/camera-coverage", community=community, target=target
        )

    def warnings(self, status: str = "active") -> gpd.GeoDataFrame:
        """Warnings (``active`` | ``lifted`` | ``expired`` | ``all``) as a GeoDataFrame:
        code, hazard, level (blue…red), status, valid_from/valid_to (UTC), run_id, exposure."""
        doc = self.get_json("/warnings", status=status)
        return features_to_gdf(
            doc.get("features") or [],
            {k: DATETIME for k in ("valid_from", "valid_to", "created_at", "lifted_at")},
            id_column="code",
        )

    def warning(self, code: str) -> dict[str, Any]:
        """One warning with its full exposure."""
        return self.get_json(f"/warnings/{code}")  # type: ignore[no-any-return]

    def issue_warning(
        self,
        run: int | Mapping[str, Any],
        level_min: int | str = "yellow",
        *,
        hazard: str | None = None,
        valid_hours: float | None = 6,
        title: str | None = None,
        replaces: str | None = None,
    ) -> dict[str, Any]:
        """Issue a warning over a run's cells at or above ``level_min`` (operator key);
        ``replaces`` lifts that active warning and makes this one's CAP message an Update."""
        body: dict[str, Any] = {"run_id": _run_id(run), "level_min": _level_name(level_min)}
        if hazard:
            body["hazard"] = hazard
        if replaces:
            body["replaces"] = replaces
        if valid_hours is not None:
            body["valid_hours"] = valid_hours
        if title:
            body["title"] = title
        return self.post_json("/warnings", body)  # type: ignore[no-any-return]

    def lift_warning(self, code: str, reason: str | None = None) -> dict[str, Any]:
        """Lift an active warning (operator key); returns it with status ``lifted``."""
        body = {"reason": reason} if reason else {}
        return self.post_json(f"/warnings/{code}/lift", body)  # type: ignore[no-any-return]

    def evacuation(self, code: str) -> pd.DataFrame:
        """The vulnerable residents inside a warning (operator key; each read is audited):
        resident, tags, address, cadre, transfer status, nearest shelter and its distance."""
        resp = self.request("GET", f"/warnings/{code}/evacuation.csv")
        text = resp.content.removeprefix(b"\xef\xbb\xbf").decode("utf-8")
        return pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)

    def acks(self, code: str) -> dict[str, Any]:
        """Who acknowledged a warning (叫应) and who has not, with the progress."""
        return self.get_json(f"/warnings/{code}/acks")  # type: ignore[no-any-return]

    def acknowledge(self, code: str, recipient: str, note: str | None = None) -> dict[str, Any]:
        """Record a cadre's or grid worker's receipt of a warning (operator key)."""
        body = {"code": recipient, **({"note": note} if note else {})}
        return self.post_json(f"/warnings/{code}/acks", body)  # type: ignore[no-any-return]

    def set_transfer(
        self, code: str, resident: str, status: str, note: str | None = None
    ) -> dict[str, Any]:
        """Set a vulnerable resident's transfer status (待转移/已转移/拒绝/已返回)."""
        body = {"status": status, **({"note": note} if note else {})}
        return self.post_json(  # type: ignore[no-any-return]
            f"/warnings/{code}/residents/{resident}/status", body
        )

    def cap(self, code: str, identifier: str | None = None) -> str:
        """A warning's latest CAP 1.2 message (XML text), or the one with ``identifier``."""
        params = {"identifier": identifier} if identifier else None
        return self.request("GET", f"/warnings/{code}.cap", params=params).text

    # ------------------------------------------------------------------ field work
    def report_incident(
        self,
        kind: str,
        lon: float,
        lat: float,
        description: str | None = None,
        *,
        photos: Sequence[str | Path | bytes] = (),
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Report an incident (operator key) with photos (paths or bytes: JPEG, PNG, HEIC);
        returns the incident as a GeoJSON Feature."""
        fields = {"kind": kind, "lon": str(lon), "lat": str(lat)}
        if description:
            fields["description"] = description
        files = []
        for n, photo in enumerate(photos, start=1):
            data = photo if isinstance(photo, bytes) else Path(photo).read_bytes()
            name = f"photo{n}" if isinstance(photo, bytes) else Path(photo).name
            files.append(("photos", (name, data, "application/octet-stream")))
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        resp = self.request("POST", "/incidents", data=fields, files=files or None,
                            headers=headers)  # fmt: skip
        return resp.json()  # type: ignore[no-any-return]

    def incident_step(
        self, code: str, stage: str, note: str | None = None, department: str | None = None
    ) -> dict[str, Any]:
        """Take the next step of an incident (受理, 派遣, 处置, 核查, 结案; operator key)."""
        body: dict[str, Any] = {"stage": stage}
        if note:
            body["note"] = note
        if department:
            body["department"] = department
        return self.post_json(f"/incidents/{code}/steps", body)  # type: ignore[no-any-return]

    def incident_kpis(self, by: str = "grid") -> pd.DataFrame:
        """智慧报表 rows per grid, community, kind or department (``GET /stats/incidents``)."""
        return pd.DataFrame(self.get_json("/stats/incidents", by=by)["rows"])

    def edit(self, layer: str, code: str, *, if_match: str | None = None, **changes: Any) -> str:
        """Change properties of one feature (operator key; OGC API Features Part 4 PATCH);
        ``geometry=`` a GeoJSON geometry moves it.  With ``if_match`` (an ETag) the edit is
        refused when the feature changed since.  Returns the new ETag."""
        geometry = changes.pop("geometry", None)
        body: dict[str, Any] = {"properties": changes}
        if geometry is not None:
            body["geometry"] = geometry
        headers = {"If-Match": if_match} if if_match else None
        resp = self.request(
            "PATCH", f"/collections/{layer}/items/{code}", json=body, headers=headers
        )
        return resp.headers["ETag"]

    def stats(self) -> dict[str, Any]:
        """KPIs of the big screen (``GET /stats/summary``)."""
        return self.get_json("/stats/summary")  # type: ignore[no-any-return]
