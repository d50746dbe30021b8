"""Tiles: tile matrix sets, MVT SQL, raster tiles, caching, PMTiles export, styles."""
