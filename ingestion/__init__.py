"""Ingestion: readings into the landing zone.

- :mod:`ingestion.simulator`: a deterministic sensor fleet; :mod:`ingestion.signals` says how its
  signals behave, :mod:`ingestion.dirty` what bad lines it sends, :mod:`ingestion.labels` where the
  ground truth of injected faults and dirty records goes.
- :mod:`ingestion.replay`: recorded series (CSV, NDJSON) turned into readings.
- :mod:`ingestion.sinks`: where lines go: the landing folder, S3, Kinesis, Firehose.
- :mod:`ingestion.produce`: :func:`~ingestion.produce.produce`, the function behind ``lakehouse produce``.
- :mod:`ingestion.cli`: the ``produce`` and ``replay`` subcommands.
"""
