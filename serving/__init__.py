"""The HTTP API: recommendations, offers and the customer view."""
