"""The config's ``metrics`` section, checked once (:class:`MetricSettings`)."""

from __future__ import annotations

from dataclasses import dataclass

from advmri.errors import ConfigError
from advmri.metrics.lesion import METHODS
from advmri.metrics.registry import PAPER_RESPONSES, select_responses


@dataclass(frozen=True)
class MetricSettings:
    """The config's ``metrics`` section, checked.

    ``responses`` are the names of the study's responses (``metrics.responses``; the paper's five
    when the key is absent), each registered in :mod:`advmri.metrics.registry`.
    """

    segment_length: float
    samples_per_segment: int
    interpolation_order: int
    sharpness_method: str
    min_profiles: int
    ssim_max_window: int
    batch_size: int
    example_samples: int
    responses: tuple[str, ...] = PAPER_RESPONSES

    @classmethod
    def from_config(cls, section: dict) -> MetricSettings:
        """Read the ``metrics`` section; ConfigError naming a missing or invalid key."""
        try:
            sharp = section["sharpness"]
            out = cls(
                segment_length=float(sharp["segment_length_px"]),
                samples_per_segment=int(sharp["samples_per_segment"]),
                interpolation_order=int(sharp["interpolation_order"]),
                sharpness_method=str(sharp["method"]),
                min_profiles=int(sharp["min_profiles"]),
                ssim_max_window=int(section["ssim_max_window"]),
                batch_size=int(section["batch_size"]),
                example_samples=int(section["example_samples"]),
                responses=tuple(
                    r.name for r in select_responses(section.get("responses", PAPER_RESPONSES))
                ),
            )
        except KeyError as error:
            raise ConfigError(f"metrics: missing key {error.args[0]!r} (see config.yaml)") from None
        checks = [
            (out.segment_length > 0, "sharpness.segment_length_px must be > 0"),
            (out.samples_per_segment >= 5, "sharpness.samples_per_segment must be >= 5"),
            (0 <= out.interpolation_order <= 5, "sharpness.interpolation_order must be 0-5"),
            (
                out.sharpness_method in METHODS,
                f"sharpness.method = {out.sharpness_method!r} is not one of {list(METHODS)}",
            ),
            (1 <= out.min_profiles <= 8, "sharpness.min_profiles must be 1-8"),
            (out.ssim_max_window >= 3, "ssim_max_window must be >= 3"),
            (out.batch_size >= 1, "batch_size must be >= 1"),
            (out.example_samples >= 0, "example_samples must be >= 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(f"metrics.{message} (config.yaml)")
        return out
