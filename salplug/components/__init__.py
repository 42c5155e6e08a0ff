"""What a component is: the base classes of every kind, the data contract, checkpoints, weight tags.

Learned components mix in `Learned`, which builds them from their checkpoint (shipped with
the plugin, `shipped_checkpoint`, or a path) with the architecture the file records.

Plugins subclass these (`PriorProvider`, `Refiner`, ...) with a pydantic `Config`; the
contract guards (`check_image`, `check_map`, `check_mask`) name what was expected and what came.
"""

from salplug.components._base import (
    INPUT_MARK,
    KINDS,
    Backbone,
    Component,
    ComponentConfig,
    Metric,
    PostProcessor,
    PriorProvider,
    Refiner,
    Trainer,
    input_field,
)
from salplug.components._compat import import_timm
from salplug.components._contracts import check_image, check_map, check_mask
from salplug.components._learned import Learned, seeded
from salplug.components._shipped import SHIPPED, checkpoint_file, shipped_checkpoint
from salplug.components._weight_tags import classifier, describe, load_matching, resolve
from salplug.components._weights import (
    checkpoint_architecture,
    checkpoint_state,
    read_checkpoint,
    read_payload,
    stored_fields,
    write_payload,
)

__all__ = [
    "INPUT_MARK", "KINDS", "SHIPPED", "Backbone", "Component", "ComponentConfig", "Learned", "Metric",
    "PostProcessor", "PriorProvider", "Refiner", "Trainer", "check_image", "check_map", "check_mask",
    "checkpoint_architecture", "checkpoint_file", "checkpoint_state", "classifier", "describe", "import_timm",
    "input_field", "load_matching", "read_checkpoint", "read_payload", "resolve", "seeded", "shipped_checkpoint",
    "stored_fields", "write_payload",
]
