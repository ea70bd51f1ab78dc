"""Recorder processes: ``recfw worker`` records one room in its own process.

* :mod:`.job` — the recording job a worker is given (JSON on stdin or in a file);
* :mod:`.client` — the worker's end: joins the room over WebRTC as ``recorder``,
  subscribes to everyone, composites, encodes and spools (:func:`run_job`);
* :mod:`.supervisor` — the room server's end: :class:`SupervisedSession` starts a
  worker per recording, follows its state and notices when it dies.
"""
