"""Geography verbs: segment a border, write a layer (:func:`riskmodel.io.write.layer.write_layer`)."""

from __future__ import annotations

import logging
from typing import Any

from riskmodel.config.settings import Settings
from riskmodel.geo.geodata import Geography
from riskmodel.geo.segments import segment_summary
from riskmodel.io.write.layer import write_layer

log = logging.getLogger(__name__)


def build_segments(
    settings: Settings,
    *,
    border: str | None = None,
    out: str | None = None,
    max_gap_m: float = 200.0,
) -> dict[str, Any]:
    """Segment a border (bundled or the user's) and optionally write the segments.

    Returns
    -------
    dict
        Count, lengths and CRS (see :func:`riskmodel.geo.segments.segment_summary`).
    """
    from riskmodel.geo.segments import make_segments, read_border

    if border is None:
        geo = Geography(settings)
        seg, b = geo.segments, geo.border
    else:
        b = read_border(border, metric_crs=None, max_gap_m=max_gap_m)
        seg = make_segments(b, float(settings.segment_length_m))
    info = segment_summary(seg, b)
    info["mean_length_m"] = float(seg["length_m"].mean())
    info["crs"] = str(seg.crs)
    if out:
        write_layer(seg, out)
    return info
