"""Package the bronze job for a cluster: one zip of our Python packages plus the entry script.

    lakehouse bronze package --out dist/
    aws s3 cp dist/ s3://my-bucket/jobs/lakehouse/ --recursive
    spark-submit --py-files s3://my-bucket/jobs/lakehouse/lakehouse_job.zip \\
        s3://my-bucket/jobs/lakehouse/bronze_job.py --lake s3://my-bucket/lake

The job needs nothing beyond PySpark (which the cluster provides) and the standard library, so the zip
holds only our own code: the contract, settings and lake layout (``lakehouse``) and the job (``spark``).
"""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("lakehouse", "spark")
ZIP_NAME = "lakehouse_job.zip"
ENTRY_NAME = "bronze_job.py"


def build_job_package(out_dir: Path) -> tuple[Path, Path]:
    """Write ``lakehouse_job.zip`` and ``bronze_job.py`` into ``out_dir``; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    archive = out_dir / ZIP_NAME
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for package in PACKAGES:
            for source in sorted((REPO_ROOT / package).rglob("*.py")):
                zf.write(source, source.relative_to(REPO_ROOT).as_posix())
    entry = out_dir / ENTRY_NAME
    shutil.copyfile(REPO_ROOT / "spark" / "bronze_job.py", entry)
    return archive, entry
