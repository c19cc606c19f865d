"""Synthesize the stack into a CloudFormation template, offline (CDK's jsii runtime needs only Node)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from infra.stack import StackConfig
from lakehouse.errors import LakehouseError

INSTALL_HINT = "pip install 'iot-sensor-lakehouse[infra]' (or `make setup`, which installs the dev extra)"


def synth(config: StackConfig, out_dir: str | Path) -> Path:
    """Write the cloud assembly (``<out_dir>/<stack>.template.json`` and the manifest ``cdk deploy --app``
    reads) and return the template's path."""
    if shutil.which("node") is None:
        raise LakehouseError("CDK synthesizes through Node.js, which is not on PATH; install Node 20 or newer")
    # jsii prints a banner for Node versions it no longer tests; the template does not depend on it.
    os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
    try:
        from infra.stack import build_app
    except ImportError as exc:
        raise LakehouseError(f"synthesizing the stack needs AWS CDK ({exc.name} is missing): {INSTALL_HINT}") from exc
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    build_app(config, outdir=str(out)).synth()
    template = out / f"{config.stack_name}.template.json"
    if not template.exists():
        raise LakehouseError(f"CDK wrote no {template.name} into {out}; see the output above")
    # CloudFormation takes a template body of at most 51,200 bytes without an S3 bucket in between; CDK's
    # indented JSON is about twice the compact one, so the compact one is written.
    template.write_text(json.dumps(json.loads(template.read_text()), separators=(",", ":")))
    return template
