"""Adversarial suite of the secrets scan."""
