"""Sensor readings in (validated batches, idempotent on sensor + time) and latest values out.

Rain gauges report millimetres of rain fallen in the interval ending at ``observed_at``
(UTC); water-level sensors report metres above datum.  Rolling totals are sums of rain
over the 1 h, 3 h and 24 h before the window end.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

import asyncpg

from emergency.errors import InvalidInput, InvalidReadings
from layers.audit import Actor, record_async
from layers.events import record_event

#: Readings stamped further than this into the future are refused (clock skew allowance).
FUTURE_TOLERANCE = dt.timedelta(minutes=10)
#: Most readings in one batch.
MAX_BATCH = 10_000
#: A sensor with no reading for this long is flagged stale.
STALE_AFTER = dt.timedelta(minutes=30)


@dataclass(frozen=True)
class Reading:
    """One reading: sensor code, aware ``observed_at``, value (mm or m), optional unit."""

    sensor_code: str
    observed_at: dt.datetime
    value: float
    unit: str | None = None


@dataclass(frozen=True)
class IngestResult:
    received: int
    inserted: int
    updated: int
    unchanged: int
    sensors: int

    def as_dict(self) -> dict[str, int]:
        return {
            "received": self.received,
            "inserted": self.inserted,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "sensors": self.sensors,
        }


def _problem(r: Reading, sensor: asyncpg.Record | None, now: dt.datetime) -> str | None:
    if sensor is None:
        return f"unknown sensor {r.sensor_code!r}"
    if r.observed_at.tzinfo is None:
        return "observed_at needs a time zone (e.g. 2026-06-01T08:00:00Z)"
    if r.observed_at > now + FUTURE_TOLERANCE:
        return f"observed_at {r.observed_at.isoformat()} is in the future"
    if not math.isfinite(r.value):
        return "value must be a finite number"
    if sensor["kind"] == "rain_gauge" and r.value < 0:
        return f"negative rain ({r.value} mm)"
    if r.unit is not None and sensor["unit"] is not None and r.unit != sensor["unit"]:
        return f"unit {r.unit!r} does not match the sensor's unit {sensor['unit']!r}"
    return None


async def ingest_readings(
    conn: asyncpg.Connection, readings: list[Reading], actor: Actor
) -> IngestResult:
    """Store a batch of readings: all or none.

    A reading already stored with the same value is left alone (re-sending a batch is
    harmless); one with a different value replaces it (a corrected reading).

    Raises:
        InvalidReadings: any reading is bad (unknown sensor, negative rain, future time,
            non-finite value, wrong unit, or two different values for one sensor and time);
            every problem is listed and nothing is stored.
        InvalidInput: an empty or oversized batch.
    """
    if not readings:
        raise InvalidInput("no readings in the batch")
    if len(readings) > MAX_BATCH:
        raise InvalidInput(f"at most {MAX_BATCH} readings per batch, got {len(readings)}")
    codes = sorted({r.sensor_code for r in readings})
    sensors = {
        s["code"]: s
        for s in await conn.fetch(
            "SELECT code, kind, unit FROM sensors WHERE code = ANY($1::text[])", codes
        )
    }
    now = await conn.fetchval("SELECT now()")
    errors: list[dict[str, Any]] = []
    seen: dict[tuple[str, dt.datetime], float] = {}
    rows: list[tuple[str, dt.datetime, float, str]] = []
    for i, r in enumerate(readings):
        sensor = sensors.get(r.sensor_code)
        problem = _problem(r, sensor, now)
        key = (r.sensor_code, r.observed_at)
        if problem is None and key in seen and seen[key] != r.value:
            problem = "two different values for the same sensor and time in the batch"
        if problem is not None:
            errors.append({"index": i, "sensor_code": r.sensor_code, "reason": problem})
            continue
        assert sensor is not None
        if key not in seen:
            seen[key] = r.value
            rows.append((r.sensor_code, r.observed_at, float(r.value), r.unit or sensor["unit"]))
    if errors:
        raise InvalidReadings(errors)
    async with conn.transaction():
        changed = await conn.fetch(
            """
            INSERT INTO sensor_readings (sensor_code, observed_at, value, unit)
            SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::float8[], $4::text[])
            ON CONFLICT (sensor_code, observed_at) DO UPDATE
                SET value = EXCLUDED.value, unit = EXCLUDED.unit, received_at = now()
                WHERE sensor_readings.value IS DISTINCT FROM EXCLUDED.value
            RETURNING (xmax = 0) AS inserted
            """,
            [r[0] for r in rows],
            [r[1] for r in rows],
            [r[2] for r in rows],
            [r[3] for r in rows],
        )
        inserted = sum(1 for c in changed if c["inserted"])
        result = IngestResult(
            received=len(readings),
            inserted=inserted,
            updated=len(changed) - inserted,
            unchanged=len(rows) - len(changed),
            sensors=len(codes),
        )
        if changed:
            latest = max(r[1] for r in rows)
            detail = {**result.as_dict(), "sensor_codes": codes[:50]}
            await record_async(conn, actor, "readings.ingest", None, detail)
            await record_event(
                conn,
                "readings_received",
                {**result.as_dict(), "latest_observed_at": latest.isoformat()},
            )
    return result


SENSORS_SQL = """
SELECT s.code, s.name, s.kind, s.unit, s.status, s.grid_code,
       ST_X(s.geom) AS lon, ST_Y(s.geom) AS lat,
       l.observed_at AS latest_observed_at, l.value AS latest_value,
       t.rain_mm_1h, t.rain_mm_3h, t.rain_mm_24h
FROM sensors s
LEFT JOIN LATERAL (
    SELECT observed_at, value FROM sensor_readings r
    WHERE r.sensor_code = s.code AND r.observed_at <= $1
    ORDER BY observed_at DESC LIMIT 1
) l ON true
LEFT JOIN LATERAL (
    SELECT sum(value) FILTER (WHERE observed_at > $1 - interval '1 hour') AS rain_mm_1h,
           sum(value) FILTER (WHERE observed_at > $1 - interval '3 hours') AS rain_mm_3h,
           sum(value) AS rain_mm_24h
    FROM sensor_readings r
    WHERE s.kind = 'rain_gauge' AND r.sensor_code = s.code
      AND r.observed_at > $1 - interval '24 hours' AND r.observed_at <= $1
) t ON true
WHERE ($2::text IS NULL OR s.kind = $2)
ORDER BY s.code
"""


async def sensors_status(
    conn: asyncpg.Connection, at: dt.datetime | None = None, kind: str | None = None
) -> dict[str, Any]:
    """Every sensor with its latest reading and, for rain gauges, the rain totals (mm)
    over the 1 h / 3 h / 24 h ending at ``at`` (default: now), as a GeoJSON
    FeatureCollection (points, EPSG:4326)."""
    end = at or await conn.fetchval("SELECT now()")
    rows = await conn.fetch(SENSORS_SQL, end, kind)
    features = []
    for r in rows:
        latest = r["latest_observed_at"]
        rain = r["kind"] == "rain_gauge"
        features.append(
            {
                "type": "Feature",
                "id": r["code"],
                "geometry": {"type": "Point", "coordinates": [r["lon"], r["lat"]]},
                "properties": {
                    "code": r["code"],
                    "name": r["name"],
                    "kind": r["kind"],
                    "unit": r["unit"],
                    "status": r["status"],
                    "grid_code": r["grid_code"],
                    "latest_value": r["latest_value"],
                    "latest_observed_at": latest.isoformat() if latest else None,
                    "stale": latest is None or end - latest > STALE_AFTER,
                    "rain_mm_1h": (r["rain_mm_1h"] or 0.0) if rain else None,
                    "rain_mm_3h": (r["rain_mm_3h"] or 0.0) if rain else None,
                    "rain_mm_24h": (r["rain_mm_24h"] or 0.0) if rain else None,
                },
            }
        )
    return {
        "type": "FeatureCollection",
        "window_end": end.isoformat(),
        "features": features,
        "numberReturned": len(features),
    }
