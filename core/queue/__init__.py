"""Recording jobs on Redis Streams (``[workers] queue``), for recorders on many machines.

* :mod:`.settings` — ``[workers]`` of the config file (``RECFW_QUEUE_URL``);
* :mod:`.cost` — what a recording costs (cores) and what a host offers;
* :mod:`.redisq` — the stream, consumer group, state streams and heartbeat keys;
* :mod:`.session` — the room server's end: :class:`QueuedSession` puts a job on
  the stream and follows its state, like :class:`~recfw.worker.SupervisedSession`;
* :mod:`.worker` — ``recfw worker --queue``: takes the jobs that fit, runs one
  recorder process per job, heartbeats, reclaims dead workers' jobs.

See docs/architecture.md ("Recorder workers on Redis").
"""
