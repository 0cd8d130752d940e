"""The life of one instance, the same on every backend.

Backends are transports: they move a call to where it runs and its outcome back, and know
how to stop, terminate and kill what runs there. Every step that is not about moving or
killing lives here, once::

    where                    step                                          here
    -----                    ----                                          ----
    where the task runs      load the call, run the body, capture what it  running.capture
                             returned or raised as an Outcome (tblib frames,
                             a text fallback for what does not pickle)
    the parent               turn an Outcome, or a death, into an Ending   outcomes.decode
    the parent               stop request → grace → terminate → kill;      deadlines.StopLadder
                             the timeout, and a worker slow to exit
    the parent               settle the future from the Ending and the     ending.settle, called by
                             ladder (timed out? terminated?), free the     backends.base.Job.finish
                             slot, exactly once

``messages`` holds the typed records that travel (:class:`~.messages.Outcome`,
:class:`~.messages.ErrorInfo`); ``frames`` says which traceback frames are the library's.
Importing this package is cheap (a worker imports ``running`` on every start): pickling
with cloudpickle and tblib is imported only when an outcome needs it.
"""
