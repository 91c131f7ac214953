"""ganrt.ops."""
