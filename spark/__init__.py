"""Landing -> bronze with Spark Structured Streaming: parse, quarantine, publish each batch idempotently."""
