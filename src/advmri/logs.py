"""Route a rule's output to its log file, and emit progress the same way everywhere."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

logger = logging.getLogger("advmri")


@contextlib.contextmanager
def log_to(path: str | Path | None) -> Iterator[logging.Logger]:
    """Send advmri's log records (and warnings) to ``path`` and stderr for the block's duration.

    An exception escaping the block is logged with its traceback before it propagates, so the
    rule's log file says why the job failed.
    """
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(path, mode="w"))
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%Y-%m-%d %H:%M:%S")
    for handler in handlers:
        handler.setFormatter(fmt)
        logger.addHandler(handler)
    previous_level = logger.level
    logger.setLevel(logging.INFO)
    logging.captureWarnings(True)
    try:
        yield logger
    except Exception:
        logger.exception("failed")
        raise
    finally:
        logging.captureWarnings(False)
        logger.setLevel(previous_level)
        for handler in handlers:
            logger.removeHandler(handler)
            handler.close()
