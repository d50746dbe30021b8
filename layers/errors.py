"""Exceptions of the ``layers`` package (no HTTP here; the service maps them)."""

from __future__ import annotations


class LayersError(Exception):
    """Base class of every error raised by :mod:`layers`."""


class UnknownLayer(LayersError, KeyError):
    """A collection id that the catalog does not hold."""

    def __init__(self, layer_id: str, known: tuple[str, ...] = ()):
        self.layer_id = layer_id
        self.known = known
        super().__init__(layer_id)

    def __str__(self) -> str:
        hint = f"; known layers: {', '.join(self.known)}" if self.known else ""
        return f"unknown layer {self.layer_id!r}{hint}"


class UnknownProperty(LayersError, KeyError):
    """A property name that a layer does not have."""

    def __init__(self, layer_id: str, name: str):
        self.layer_id = layer_id
        self.name = name
        super().__init__(name)

    def __str__(self) -> str:
        return f"layer {self.layer_id!r} has no property {self.name!r}"


class DatabaseUnavailable(LayersError):
    """The database cannot be reached."""


class ClusterError(LayersError):
    """The project-local PostgreSQL cluster could not be managed."""


class PortInUse(ClusterError):
    """The cluster's port is taken by another program."""


class ImportFailed(LayersError):
    """An import was refused; the layer is left exactly as it was.

    Attributes:
        path: the input file.
        row: 1-based feature/row number the problem is on, when known.
        problem: what is wrong.
    """

    def __init__(self, path: str, problem: str, row: int | None = None):
        self.path = path
        self.problem = problem
        self.row = row
        where = f"{path}, row {row}" if row is not None else path
        super().__init__(f"{where}: {problem}")


class ExportFailed(LayersError):
    """An export could not be written."""
