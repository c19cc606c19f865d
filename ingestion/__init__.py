"""Ingestion: readings into the landing zone.

- :mod:`ingestion.simulator`: a deterministic sensor fleet (signals, faults with labels, dirty records).
- :mod:`ingestion.replay`: recorded series (CSV, NDJSON) turned into readings.
- :mod:`ingestion.sinks`: where lines go: the landing folder, S3, Kinesis, Firehose.
- :mod:`ingestion.produce`: :func:`~ingestion.produce.produce`, the function behind ``lakehouse produce``.
"""
