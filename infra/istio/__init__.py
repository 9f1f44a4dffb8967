"""Istio objects as typed Pulumi resources."""
