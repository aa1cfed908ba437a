"""The packet simulator: the second engine behind ``fabric run`` (docs/design.md §1).

It runs the same design and Schedule as the emulator (:mod:`fabric.emu`) at real link rates in
ns-3 and writes the same run directory (:mod:`fabric.rundir`), so analysis, economics and reports
read either engine's runs unchanged.

* :mod:`fabric.sim.model` — the plan: nodes, links, routes, messages as arrays (plain Python);
* :mod:`fabric.sim.runner` — :class:`SimOptions`, :func:`estimate`, :func:`run` (the entry point);
* :mod:`fabric.sim.child` — the process that loads the compiled model (and ns-3 with it) and runs it;
* :mod:`fabric.sim.native` — the compiled model: built once into the cache, loaded with ctypes;
* ``engine.h``, ``ddc.h`` — the per-packet model in C++; ``capi.cpp`` — its C functions.
"""
