"""Thin blueprints of the coop face: form -> domain call -> one commit -> redirect."""
