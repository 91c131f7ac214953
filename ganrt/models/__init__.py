"""ganrt.models."""
