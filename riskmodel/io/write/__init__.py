"""Writers: atomic, deterministic output files, one module per format.

``geojson`` (RFC 7946) with ``qml`` styles, ``gpkg`` (with embedded styles), ``html`` (the
offline map; page parts in ``templates/``), ``png``, ``csv``, ``provenance``, ``layer`` (write by
file extension); ``styles`` holds the shared symbology and ``common`` the shared checks.
"""
