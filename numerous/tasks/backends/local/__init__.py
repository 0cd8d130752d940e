"""The local backend: one spawned worker process per instance (see ``backend``)."""
