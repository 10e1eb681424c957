"""The model layer: the registry, pretrained-weight lookup and the built-in adapters.

Besides the adapters, the package holds :mod:`models.registry` (names to factories),
:mod:`models.weights` (local ImageNet checkpoints), :mod:`models.errors` and the
helpers the adapters share (:mod:`models.padding`, :mod:`models.normalization`,
:mod:`models.checkpoint_keys`).  Each adapter module registers its factories with
:func:`models.registry.register_model` when it is imported; importing any part of
this package runs the imports below, so every built-in adapter is registered.  The
list is explicit (no folder scanning): add a new adapter module's import below.
"""

from models import identity  # noqa: F401  (imported for its registrations)
from models import mbnet  # noqa: F401
from models import atst  # noqa: F401
from models import danet  # noqa: F401
from models import pgar  # noqa: F401
from models import rd3d  # noqa: F401
from models import ian  # noqa: F401
from models import dfusenet  # noqa: F401
