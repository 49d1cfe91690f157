"""``advmri.metrics`` holds pure functions (arrays in, numbers out): importing it must not load
torch, the network layer or training, so evaluating images never drags in the training loop."""

import json
import subprocess
import sys

import pytest

FORBIDDEN = ("torch", "advmri.models", "advmri.train", "advmri.evaluation", "advmri.enhance")


@pytest.mark.parametrize("module", ["advmri.metrics", "advmri.metrics.evaluate"])
def test_importing_the_metrics_loads_neither_torch_nor_models_nor_training(module):
    probe = (
        f"import json, sys; import {module}; "
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'advmri'))))"
    )
    loaded = json.loads(
        subprocess.run(
            [sys.executable, "-c", probe], capture_output=True, text=True, check=True
        ).stdout
    )
    assert module in loaded  # the probe did import it
    offending = [m for m in loaded if any(m == f or m.startswith(f + ".") for f in FORBIDDEN)]
    assert offending == [], f"importing {module} loads {offending}"
