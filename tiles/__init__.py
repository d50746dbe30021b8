"""Map tiles: tile matrix sets, MVT from PostGIS, raster tiles, caching, PMTiles, styles.

A domain package: no FastAPI here; errors are :mod:`tiles.errors`.
"""
