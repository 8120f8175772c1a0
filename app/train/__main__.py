"""Entry point of one job process: ``python -m app.train JOB_DIR/spec.json`` (or under torchrun).

The process ends with ``os._exit`` once the job has written its last event: the interpreter's
own teardown (torch's above all) takes seconds on a busy machine, and a job whose server is gone
must be gone within a few seconds. Every file the job writes is closed by then.
"""

import logging
import os
import sys
from pathlib import Path

from app.train.job import run_job

if len(sys.argv) != 2:
    sys.exit("usage: python -m app.train SPEC.json")
logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
code = run_job(Path(sys.argv[1]))
logging.shutdown()
sys.stdout.flush()
sys.stderr.flush()
os._exit(code)
