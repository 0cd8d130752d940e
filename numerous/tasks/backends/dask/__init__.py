"""The Dask backend: instances run on a Dask distributed cluster.

``NUMEROUS_TASK_BACKEND=dask`` (or ``remote``) with the scheduler's address in
``NUMEROUS_DASK_ADDRESS``. Each instance is one Dask task (``client.submit(pure=False)``)
that runs it, on the Dask worker, through the local backend: in a spawned process of
its own, with the same hard stop, crash isolation and shared-memory control plane.

Who carries what::

    parent (Session)                Dask scheduler                 Dask worker process         task process
    ----------------                --------------                 -------------------         ------------
    start(): slot free ─ client.submit(run_instance) ────────────▶ LocalBackend(session)
                                                                     prepare + launch ────────▶ the task body
    handler ◀─ dispatcher thread ◀─ topic "numerous-tasks-<id>" ◀── Worker.log_event ◀─ router ◀─ tc.log,
       "running", logs, progress,                                  (batched per instance)     progress, status
       status (in order)
    stop() ─ Event(<id>-stop).set() ─▶ event_wait returns ───────▶ request_stop(∞) ─ flag ──▶ tc.should_stop
    grace over ─ Event(<id>-kill).set() ▶ event_wait returns ────▶ request_stop(0): terminate the tree
    Future ◀─ dispatcher ◀─ dask future done ◀──────────────────── (kind, value | tblib error, count)
    worker died ◀─ topic "all": remove-worker ◀─ the scheduler notices
    session exit ─ client.run(close_session) ───────────────────▶ warm task processes end

Modules: :mod:`.backend` (the parent's :class:`DaskBackend`), :mod:`._dispatcher` (its
thread), :mod:`._connect` (the address and the client), :mod:`._messages` (names and
encodings both sides share), :mod:`._runner` (what runs on the Dask worker),
:mod:`._errors`. Nothing here imports ``distributed`` until a session needs it.
"""
