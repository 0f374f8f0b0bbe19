"""Read models rebuilt from the event log: one module each, plus the runner that feeds them."""

from projections.connections import CONNECTIONS
from projections.destinations import DESTINATIONS
from projections.installations import INSTALLATIONS
from projections.read_model import ReadModel

READ_MODELS: tuple[ReadModel[object], ...] = (INSTALLATIONS, CONNECTIONS, DESTINATIONS)  # type: ignore[assignment]

__all__ = ["CONNECTIONS", "DESTINATIONS", "INSTALLATIONS", "READ_MODELS", "ReadModel"]
