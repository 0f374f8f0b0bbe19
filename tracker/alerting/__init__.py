"""Alerts: issue transitions fanned out to the subscriptions that match them, and delivered at least once."""
