"""Risk models: terrain, raster to H3, rainfall metrics, landslide and flood models."""
