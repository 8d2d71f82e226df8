"""libimage.pure: the functional core.

Pure functions over immutable store snapshots. Nothing here touches the file
system, the clock, the environment or logging; the adapters do all I/O.
"""
