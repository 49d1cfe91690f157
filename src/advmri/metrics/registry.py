"""The study's responses, one definition each: the metric registry.

A :class:`Response` says everything the pipeline needs to know about one response: its CSV column
(``name``), its label and unit, the scale the statistics model it on (``log``: natural log;
``identity``: as is), which direction is better, how it is computed from an enhanced image, the
truth and the lesion (a callable over plain arrays and :class:`~advmri.metrics.settings.MetricSettings`),
and the extra CSV columns it writes. The evaluation (:func:`advmri.metrics.evaluate.evaluate_arrays`),
the statistics (:mod:`advmri.stats`), the simulator, the report and the README's column list all read
this registry; the config's ``metrics.responses`` selects which registered responses a study has.

Order: the study's responses are always in registration order (the paper's five first, in Table 1's
order, then the opt-in ones), whatever order ``metrics.responses`` lists them in; every table,
figure and CSV uses that order.

Adding a metric means one :func:`register` call here (or in the user's own code, before the
evaluation runs), its tests and its documentation; nothing else names it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np

from advmri.errors import ConfigError, DataError
from advmri.metrics.lesion import (
    EMPTY_BOX,
    BBox,
    MetricResult,
    edge_contrast_error_with_reason,
    gradient_error_with_reason,
    mie_with_reason,
    sharpness_of_stack,
    ssim_in_box_with_reason,
)

if TYPE_CHECKING:
    from advmri.metrics.settings import MetricSettings

#: How the statistics model a response: ``log`` (natural log; 0 is left out and counted, a
#: negative value refused) or ``identity`` (as is).
Scale = Literal["log", "identity"]
Better = Literal["higher", "lower"]
SCALES: tuple[str, ...] = ("log", "identity")
#: Suffix of the column saying why a response is empty in a row (``""`` where it is a number).
REASON_SUFFIX = "_reason"


@dataclass(frozen=True)
class ImageStack:
    """The images one evaluation measures, as plain arrays.

    Attributes
    ----------
    enhanced, truth : (n, H, W) float64
        Image ``i`` of each stack belongs to test sample ``i``; one intensity scale ([0, 1]).
    lesion : (n, H, W) bool
        Lesion masks of the ground truth.
    boxes : (n, 4) int64
        Each lesion's bounding box ``(r0, c0, r1, c1)``, half-open, as in ``samples.csv``.
    """

    enhanced: np.ndarray
    truth: np.ndarray
    lesion: np.ndarray
    boxes: np.ndarray

    def __len__(self) -> int:
        return int(self.enhanced.shape[0])


@dataclass(frozen=True)
class ResponseValues:
    """One response computed over an :class:`ImageStack`.

    Attributes
    ----------
    values : (n,) float
        The response per image; NaN where undefined.
    reasons : (n,) object
        ``""`` where ``values`` is a number, else a short code saying why not.
    extra : dict of column name -> (n,) array
        The response's extra CSV columns (:attr:`Response.extra_columns`), in that order.
    notes : dict of str -> dict
        Counts worth keeping with the table (``DataFrame.attrs``), e.g. why edge profiles
        were not fitted.
    log : str
        A phrase for the evaluation's log line (empty for none).
    """

    values: np.ndarray
    reasons: np.ndarray
    extra: dict[str, np.ndarray] = field(default_factory=dict)
    notes: dict[str, dict] = field(default_factory=dict)
    log: str = ""


#: How a response is computed: the whole stack at once (so fits can be batched).
ComputeStack = Callable[[ImageStack, "MetricSettings"], ResponseValues]
#: How a response is computed for one image: ``(enhanced, truth, lesion, bbox, settings)``.
ComputeImage = Callable[[np.ndarray, np.ndarray, np.ndarray, BBox, "MetricSettings"], MetricResult]


def per_image(compute: ComputeImage) -> ComputeStack:
    """A :data:`ComputeStack` that applies a one-image metric to every image of the stack.

    ``compute(enhanced, truth, lesion, bbox, settings)`` gets (H, W) float64 images, the (H, W)
    bool mask and the box as a tuple of ints, and returns a
    :class:`~advmri.metrics.lesion.MetricResult` (NaN with a reason where undefined).
    """

    def over_stack(stack: ImageStack, settings: MetricSettings) -> ResponseValues:
        n = len(stack)
        values = np.full(n, np.nan)
        reasons = np.full(n, "", dtype=object)
        for i in range(n):
            result = compute(
                stack.enhanced[i],
                stack.truth[i],
                stack.lesion[i],
                tuple(int(v) for v in stack.boxes[i]),
                settings,
            )
            values[i] = result.value
            reasons[i] = result.reason if not np.isfinite(result.value) else ""
            if not np.isfinite(result.value) and not reasons[i]:
                reasons[i] = "not_finite"
        return ResponseValues(values, reasons)

    over_stack.__doc__ = compute.__doc__
    return over_stack


@dataclass(frozen=True)
class Response:
    """One response of the study.

    Attributes
    ----------
    name : str
        Its column in the evaluation CSVs and its name in the statistics files (lower case).
    label : str
        How tables and figures name it (``GE``, ``Sharpness``, ...).
    unit : str
        Unit of the raw value (``""`` for a dimensionless one).
    scale : {"log", "identity"}
        How the statistics model it: natural log, or as is.
    better : {"higher", "lower"}
        Which direction is better.
    compute : ComputeStack
        Its values over an :class:`ImageStack` (:func:`per_image` turns a one-image function
        into one).
    summary : str
        One line for the README's column list: what it measures.
    extra_columns : tuple of str
        Further CSV columns it writes (after all responses' values, before the reason columns).
    empty_when_zero : str or None
        A count column (of some response's ``extra_columns``) whose 0 explains an empty value
        in CSVs without the reason column (no edge profile fitted explains Sharpness and ECE).
    """

    name: str
    label: str
    unit: str
    scale: Scale
    better: Better
    compute: ComputeStack
    summary: str
    extra_columns: tuple[str, ...] = ()
    empty_when_zero: str | None = None

    @property
    def reason_column(self) -> str:
        """``<name>_reason``: why the value is empty in a row."""
        return self.name + REASON_SUFFIX

    @property
    def sign(self) -> int:
        """+1 where larger is better, -1 where smaller is."""
        return 1 if self.better == "higher" else -1

    @property
    def model_label(self) -> str:
        """The label on the model scale: ``ln(GE)``, ..., ``SSIM``."""
        return f"ln({self.label})" if self.scale == "log" else self.label


_REGISTRY: dict[str, Response] = {}


def register(response: Response) -> Response:
    """Add ``response`` to the registry (after those already there) and return it.

    Raises
    ------
    ValueError
        A name already registered, a name that is not a lower-case identifier, an unknown
        ``scale`` or ``better``, or an extra column another response writes.
    """
    if response.name in _REGISTRY:
        raise ValueError(f"metric registry: {response.name!r} is already registered")
    if not response.name.isidentifier() or response.name != response.name.lower():
        raise ValueError(f"metric registry: {response.name!r} is not a lower-case identifier")
    if response.scale not in SCALES:
        raise ValueError(
            f"metric registry: {response.name}: scale {response.scale!r} not in {SCALES}"
        )
    if response.better not in ("higher", "lower"):
        raise ValueError(
            f"metric registry: {response.name}: better = {response.better!r}, not higher or lower"
        )
    taken = {c for r in _REGISTRY.values() for c in (r.name, r.reason_column, *r.extra_columns)}
    clash = taken & {response.name, response.reason_column, *response.extra_columns}
    if clash:
        raise ValueError(
            f"metric registry: {response.name}: column {sorted(clash)[0]!r} is another response's"
        )
    _REGISTRY[response.name] = response
    return response


def unregister(name: str) -> None:
    """Remove a response (tests that register a toy metric clean up with this)."""
    if name not in _REGISTRY:
        raise ValueError(f"metric registry: {name!r} is not registered")
    del _REGISTRY[name]


def registered() -> tuple[Response, ...]:
    """Every registered response, in registration order."""
    return tuple(_REGISTRY.values())


def get_response(name: str) -> Response:
    """The registered response called ``name``; ConfigError listing the known ones otherwise."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigError(
            f"metric registry: {name!r} is not a registered response "
            f"(known: {', '.join(_REGISTRY)})"
        ) from None


def select_responses(names: Iterable[str], key: str = "metrics.responses") -> tuple[Response, ...]:
    """The responses ``names`` selects, in registration order.

    Raises
    ------
    ConfigError
        One line naming ``key`` for a name that is not registered (listing the known ones),
        a name given twice, or an empty selection.
    """
    if isinstance(names, str):
        raise ConfigError(f"config: {key} = {names!r} must be a list of response names")
    names = list(names)
    for index, name in enumerate(names):
        if name not in _REGISTRY:
            raise ConfigError(
                f"config: {key}[{index}] = {name!r} is not a registered response "
                f"(known: {', '.join(_REGISTRY)})"
            )
    twice = [name for name, count in Counter(names).items() if count > 1]
    if twice:
        raise ConfigError(f"config: {key} lists {twice[0]!r} twice")
    if not names:
        raise ConfigError(f"config: {key} is empty; select at least one response")
    return tuple(r for r in _REGISTRY.values() if r.name in names)


def responses_in(columns: Iterable[str]) -> tuple[Response, ...]:
    """The registered responses that have a column among ``columns``, in registration order
    (the responses of a study, read from its evaluation or statistics tables)."""
    present = set(columns)
    return tuple(r for r in _REGISTRY.values() if r.name in present)


def table_columns(responses: Sequence[Response]) -> list[str]:
    """The metric columns an evaluation writes for ``responses``: their values, then their
    extra columns, then their reason columns (each group in the responses' order)."""
    return [
        *(r.name for r in responses),
        *(c for r in responses for c in r.extra_columns),
        *(r.reason_column for r in responses),
    ]


# --- the paper's five ---------------------------------------------------------------------------


def _ge(enhanced, truth, lesion, bbox, settings) -> MetricResult:
    return gradient_error_with_reason(enhanced, truth, bbox)


def _mie(enhanced, truth, lesion, bbox, settings) -> MetricResult:
    return mie_with_reason(enhanced, truth, bbox)


def _ssim(enhanced, truth, lesion, bbox, settings) -> MetricResult:
    return ssim_in_box_with_reason(enhanced, truth, bbox, settings.ssim_max_window)


def _ece(enhanced, truth, lesion, bbox, settings) -> MetricResult:
    return edge_contrast_error_with_reason(
        enhanced,
        truth,
        lesion,
        segment_length=settings.segment_length,
        samples_per_segment=settings.samples_per_segment,
        interpolation_order=settings.interpolation_order,
    )


#: Extra columns of Sharpness: fitted profiles per image (0-8) and the method used.
PROFILES_FITTED = "sharpness_profiles_fitted"
SHARPNESS_METHOD = "sharpness_method"


def _sharpness(stack: ImageStack, settings: MetricSettings) -> ResponseValues:
    """Sharpness of every image, all sigmoid fits in one batch
    (:func:`advmri.metrics.lesion.sharpness_of_stack`)."""
    results = sharpness_of_stack(
        stack.enhanced,
        stack.lesion,
        method=settings.sharpness_method,
        min_profiles=settings.min_profiles,
        segment_length=settings.segment_length,
        samples_per_segment=settings.samples_per_segment,
        interpolation_order=settings.interpolation_order,
    )
    n = len(stack)
    fitted = np.array([r.profiles_used for r in results], dtype=np.int64)
    directions = sum(len(r.profile_reasons) for r in results)
    not_fitted = Counter(p for r in results for p in r.profile_reasons if p)
    return ResponseValues(
        values=np.array([r.value for r in results], dtype=float).reshape(n),
        reasons=np.array([r.reason for r in results], dtype=object).reshape(n),
        extra={
            PROFILES_FITTED: fitted,
            SHARPNESS_METHOD: np.full(n, settings.sharpness_method, dtype=object),
        },
        notes={"profile_reasons": dict(not_fitted)},
        log=(
            f"sharpness method {settings.sharpness_method}, {int(fitted.sum())} of {directions} "
            f"profiles fitted; not fitted: {dict(not_fitted) or 'none'}"
        ),
    )


#: The paper's five responses, in Table 1's order: the default of ``metrics.responses``.
PAPER_RESPONSES: tuple[str, ...] = ("ge", "sharpness", "ece", "mie", "ssim")

register(
    Response(
        name="ge",
        label="GE",
        unit="intensity/pixel",
        scale="log",
        better="lower",
        compute=per_image(_ge),
        summary="gradient error in the lesion's bounding box (Sobel, after FLIP's edge term)",
    )
)
register(
    Response(
        name="sharpness",
        label="Sharpness",
        unit="1/pixel",
        scale="log",
        better="higher",
        compute=_sharpness,
        summary="growth rate S of sigmoids fitted across the lesion's edge (median or mean over "
        "the fitted profiles)",
        extra_columns=(PROFILES_FITTED, SHARPNESS_METHOD),
        empty_when_zero=PROFILES_FITTED,
    )
)
register(
    Response(
        name="ece",
        label="ECE",
        unit="intensity",
        scale="log",
        better="lower",
        compute=per_image(_ece),
        summary="edge-contrast error on the 8 segments across the lesion's edge",
        empty_when_zero=PROFILES_FITTED,
    )
)
register(
    Response(
        name="mie",
        label="MIE",
        unit="intensity",
        scale="log",
        better="lower",
        compute=per_image(_mie),
        summary="mean absolute intensity error in the lesion's bounding box",
    )
)
register(
    Response(
        name="ssim",
        label="SSIM",
        unit="",
        scale="identity",
        better="higher",
        compute=per_image(_ssim),
        summary="structural similarity of the lesion's bounding box (data range 1)",
    )
)


# --- opt-in responses ---------------------------------------------------------------------------

#: PSNR's reason for a NaN where the crops are identical (MSE 0: the PSNR is +inf).
IDENTICAL_IN_BOX = "identical_in_box"


def psnr_in_box(enhanced: np.ndarray, truth: np.ndarray, bbox: BBox) -> MetricResult:
    """Peak signal-to-noise ratio inside the lesion's bounding box, as BasicSR users report it.

    Parameters
    ----------
    enhanced, truth : (H, W) float
        Images on the [0, 1] intensity scale (data range 1; the enhanced image is not clipped).
    bbox : (r0, c0, r1, c1)
        Half-open box, as in ``samples.csv``.

    Returns
    -------
    MetricResult
        ``10 log10(1 / MSE)`` in dB, MSE the mean of ``(enhanced - truth)^2`` over the box
        (BasicSR's ``calculate_psnr`` with ``max_value`` 1, on the crop; equal to
        ``skimage.metrics.peak_signal_noise_ratio(truth_crop, enhanced_crop, data_range=1)``).
        NaN with reason ``"empty_box"`` for an empty box, and ``"identical_in_box"`` where the
        crops are identical: MSE 0 gives +inf, which no mean or model can use, so it is counted
        (``missing.csv``) instead of written.

    Notes
    -----
    Not a response of the paper; opt in with ``metrics.responses``. Larger is better.

    Raises
    ------
    DataError
        Images of different shapes, or a box outside the image.
    """
    a = np.asarray(enhanced, dtype=np.float64)
    b = np.asarray(truth, dtype=np.float64)
    if a.ndim != 2 or a.shape != b.shape:
        raise DataError(
            f"enhanced and truth must be 2-D images of one shape, got {a.shape} and {b.shape}"
        )
    r0, c0, r1, c1 = (int(v) for v in bbox)
    if min(r0, c0) < 0 or r1 > a.shape[0] or c1 > a.shape[1]:
        raise DataError(f"bbox {tuple(bbox)} lies outside the image of shape {a.shape}")
    if r1 <= r0 or c1 <= c0:
        return MetricResult(np.nan, EMPTY_BOX)
    mse = float(np.mean((a[r0:r1, c0:c1] - b[r0:r1, c0:c1]) ** 2))
    if mse == 0.0:
        return MetricResult(np.nan, IDENTICAL_IN_BOX)
    return MetricResult(float(10.0 * np.log10(1.0 / mse)))


def _psnr(enhanced, truth, lesion, bbox, settings) -> MetricResult:
    return psnr_in_box(enhanced, truth, bbox)


register(
    Response(
        name="psnr",
        label="PSNR",
        unit="dB",
        scale="identity",
        better="higher",
        compute=per_image(_psnr),
        summary="opt-in: peak signal-to-noise ratio 10 log10(1/MSE) in the lesion's bounding box "
        "(data range 1); identical crops are NaN (identical_in_box)",
    )
)
