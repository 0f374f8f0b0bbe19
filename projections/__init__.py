"""Read models rebuilt from the event log: one pure module each; `tracker/projecting` feeds them."""

from projections.alert_subscriptions import SUBSCRIPTIONS
from projections.connections import CONNECTIONS
from projections.destinations import DESTINATIONS
from projections.installations import INSTALLATIONS
from projections.read_model import ReadModel

READ_MODELS: tuple[ReadModel[object], ...] = (CONNECTIONS, DESTINATIONS, INSTALLATIONS, SUBSCRIPTIONS)  # type: ignore[assignment]
"""In the order rebuilds take them: an installation row reads its connection's and destinations' health as
it is written (sql/006_health.sql), so rebuilding those first spares a fan-out rewriting every installation."""

__all__ = ["CONNECTIONS", "DESTINATIONS", "INSTALLATIONS", "READ_MODELS", "SUBSCRIPTIONS", "ReadModel"]
