"""Beyond one process: chains run and evaluated over a Ray cluster (``--engine ray``).

`ray` is the optional extra ``salplug[ray]``; the core never imports it, and these functions
import it only when called.
"""

from salplug.distributed._ray_eval import score_chain_ray, score_folder_ray
from salplug.distributed._ray_run import run_chain_on_files_ray

__all__ = ["run_chain_on_files_ray", "score_chain_ray", "score_folder_ray"]
