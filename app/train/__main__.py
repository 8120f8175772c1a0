"""Entry point of one job process: ``python -m app.train JOB_DIR/spec.json`` (or under torchrun)."""

import logging
import sys
from pathlib import Path

from app.train.job import run_job

if len(sys.argv) != 2:
    sys.exit("usage: python -m app.train SPEC.json")
logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
sys.exit(run_job(Path(sys.argv[1])))
