"""Benchmarks of luma-async against its goals: ``nox -s bench`` or ``python -m bench``.

Every figure is measured side by side with its floor in the same run (raw aiohttp, a plain
aiohttp polling loop, ``import aiohttp``) and printed beside its goal; ``--check`` exits 1
when a goal is missed.  Nothing in the test suite asserts a timing.  The server always runs in
a separate process (:mod:`bench.server`).  Method and results: ``docs/performance.md``.
"""
