"""IoT sensor lakehouse: the shared kernel (config, contract, lake layout, registry) and the CLI."""

__version__ = "0.1.0"
