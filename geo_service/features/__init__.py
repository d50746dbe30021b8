"""OGC API – Features and spatial queries: parameter parsing, CQL2 → SQL, SQL builders, writers.

No FastAPI here: functions take plain values (and the layer catalog) and return SQL text with
bound-parameter lists, or documents as dicts.  Errors are raised as
:class:`geo_service.errors.ApiError` subclasses (they carry their HTTP status), or the catalog's
own :class:`layers.errors.UnknownProperty` / :class:`layers.errors.UnknownLayer`.
"""
