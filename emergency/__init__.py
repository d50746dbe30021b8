"""The emergency workflow, without HTTP: readings, warnings and their exposure, camera
coverage, incidents, statistics.

Every function takes an asyncpg connection (the service passes one from its pool; a
notebook can pass ``await asyncpg.connect(url)``) and raises the exceptions of
:mod:`emergency.errors`.  Writes happen inside the caller's transaction or one the
function opens, together with their ``audit_log`` row and their event
(:func:`layers.events.record_event`), so a change and its record commit as one.
"""
