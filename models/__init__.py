"""Built-in model adapters.

Each module here registers its adapters with :func:`models.registry.register_model`.
The list is explicit (no folder scanning): add a new module's import below.
"""

from models import identity  # noqa: F401  (imported for its registrations)
from models import mbnet  # noqa: F401
from models import atst  # noqa: F401
from models import danet  # noqa: F401
from models import pgar  # noqa: F401
from models import rd3d  # noqa: F401
