"""Helpers shared by the test suites (importable as ``support`` under pytest).

``support.podman`` builds real containers-storage stores with podman and buildah
in temporary directories; see its module docstring.
"""
