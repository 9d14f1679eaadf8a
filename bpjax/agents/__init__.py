"""Policies and agents that act in the kitchen env."""
