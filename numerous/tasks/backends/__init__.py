"""Backends run started instances; a :class:`~numerous.tasks.Session` owns one.

The contract (``Job``, ``Backend``) and the choice of backend by name live in
:mod:`numerous.tasks.backends.base`; each backend in a sub-package of its own. This
package module stays empty so that a worker process, which imports a backend's worker
module, pays for nothing else.
"""
