"""Plumbing shared by every service: settings, Redis, errors, health,
metrics, trace-header propagation and calls to peer services.

A service module imports from here and keeps only its own domain logic.
"""
