"""Annotating beyond one machine: Ray Data (``llamo annotate --engine ray``).

Python entry point::

    from llamo_plugin.annotate import AnnotateOptions
    from llamo_plugin.scale import RayOptions, annotate_with_ray

    summary = annotate_with_ray("shards/", "annotated/", AnnotateOptions(tasks=("property",)),
                                ray_options=RayOptions(address="auto"))

Ray itself is imported only when a run starts (``pip install 'llamo-plugin[ray]'``).
"""

from llamo_plugin.scale.ray_engine import RayOptions, RayRunSummary, annotate_with_ray

__all__ = ["RayOptions", "RayRunSummary", "annotate_with_ray"]
