"""Benchmarks of luma-async: ``nox -s bench`` or ``python -m bench [--quick]``.

They report, they do not gate: nothing here asserts a timing.  The server always runs in a
separate process (:mod:`bench.server`), so client and server do not share an event loop.
Results and how to read them: ``docs/performance.md``.
"""
