"""advmri: adversarial training in low-resolution MRI enhancement, reproduced as a Snakemake study."""

__version__ = "0.1.0"
