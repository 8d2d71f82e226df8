"""libimage.adapters: the I/O shell around the pure core.

Adapters read a containers-storage store into a snapshot, read configuration
files, apply plans under the store's locks and run the command line. They
translate and execute; decisions about image semantics live in ``libimage.pure``.
"""
