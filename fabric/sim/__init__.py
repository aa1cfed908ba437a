"""The packet simulator: the second engine behind ``fabric run`` (docs/design.md §1).

It runs the same design and Schedule as the emulator (:mod:`fabric.emu`) at real link rates in
ns-3 and writes the same run directory (:mod:`fabric.rundir`), so analysis, economics and reports
read either engine's runs unchanged.

* :mod:`fabric.sim.model` — the plan: nodes, links, routes, messages as arrays (plain Python);
* :mod:`fabric.sim.runner` — :class:`SimOptions`, :func:`estimate`, :func:`run` (the entry point);
* :mod:`fabric.sim.child` — the process that imports ns-3 and runs the compiled model;
* ``engine.h``, ``ddc.h`` — the per-packet model in C++, compiled at run time by cppyy.
"""
