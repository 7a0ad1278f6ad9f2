"""careloop: an open-source learning health system platform.

Routine care data are captured, stored and protected, turned into knowledge,
put back into practice, and the result captured again as new data. See
DESIGN.md for the architecture and the package that owns each step.
"""

from careloop.core.errors import CareloopError

__version__ = "0.1.0"

__all__ = ["CareloopError", "__version__"]
